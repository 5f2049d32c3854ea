import Foundation

/// Runs `body` with a new empty directory in the temporary directory (`$TMPDIR`, else /tmp), named
/// `prefix` and six random characters, and removes it with everything in it once `body` has
/// returned or thrown. Whatever writes into it (an executor, an agent, a pool's workers) must have
/// ended by then: start and wait for it inside `body`.
@discardableResult
public func withTemporaryDirectory<Result>(
    prefix: String, isolation: isolated (any Actor)? = #isolation, _ body: (String) async throws -> Result
) async throws -> Result {
    let path = try makeTemporaryDirectory(prefix: prefix)
    defer { removeTemporaryDirectory(path) }
    return try await body(path)
}

/// ``withTemporaryDirectory(prefix:isolation:_:)`` for a synchronous `body`.
@discardableResult
public func withTemporaryDirectory<Result>(prefix: String, _ body: (String) throws -> Result) throws -> Result {
    let path = try makeTemporaryDirectory(prefix: prefix)
    defer { removeTemporaryDirectory(path) }
    return try body(path)
}

private func makeTemporaryDirectory(prefix: String) throws -> String {
    var template = Array((NSTemporaryDirectory() + prefix + "XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
    guard made else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    return template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

/// Removes `path` and everything below it, read-only directories too (a package cache's trees are
/// read-only, which stops a removal by anyone but root). What cannot be removed is left: cleaning
/// up never fails a test.
private func removeTemporaryDirectory(_ path: String) {
    if (try? FileManager.default.removeItem(atPath: path)) != nil { return }
    makeDirectoriesWritable(path)
    try? FileManager.default.removeItem(atPath: path)
}

private func makeDirectoriesWritable(_ path: String) {
    var info = stat()
    guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { return }
    chmod(path, info.st_mode & 0o7777 | 0o700)
    for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
        makeDirectoriesWritable(path + "/" + name)
    }
}
