import FetchPolicy
import FuzzDriver

/// The archive path policy over a sequence of entries (one per line: `L name target` is a link,
/// anything else a file or directory name): refusals or clean relative paths, never a crash, and
/// every accepted path and link stays inside the target directory.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzArchivePath(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    var links = ArchivePathPolicy.ExtractedLinks()
    for line in text.split(separator: "\n", omittingEmptySubsequences: false).prefix(64) {
        let words = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        let isLink = words.count == 3 && words[0] == "L"
        guard case .success(let clean) = ArchivePathPolicy.relativePath(isLink ? words[1] : String(line)) else {
            continue
        }
        precondition(!clean.hasPrefix("/") && !clean.split(separator: "/").contains(".."), "unclean '\(clean)'")
        guard !clean.isEmpty, links.checkPath(clean) == nil else { continue }
        if isLink {
            guard links.checkSymlink(path: clean, target: words[2]) == nil else { continue }
            var parent = clean.split(separator: "/").map(String.init)
            parent.removeLast()
            guard case .success = links.resolve(words[2], from: parent) else {
                preconditionFailure("an accepted link '\(clean)' -> '\(words[2])' leaves the target")
            }
            links.record(path: clean, target: words[2])
        } else if case .success(let target) = ArchivePathPolicy.hardlinkTarget(String(line)) {
            _ = links.checkHardlinkTarget(target)
        }
    }
    return 0
}

runFuzzer(fuzzArchivePath)
