import FetchPolicy
import CArchive
import NIOCore
import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Why writing a payload failed, before it is turned into a ``FetchError`` naming the URI.
enum PayloadFailure: Error {
    case source(any Error)
    case unsafe(entry: String, reason: String)
    case tooLarge(String)
    /// The disk cap or the free-space reserve was reached.
    case diskLimit(String)
    case archive(String)
    case io(String)
}

/// Consumes a ``ByteChannel`` on a blocking thread and writes what it carries into a fresh
/// directory: an archive's entries (through libarchive, with our own path checks) or one file.
final class PayloadWriter: @unchecked Sendable {
    private let channel: ByteChannel
    private let directory: String
    private let plan: PayloadPlan
    private let fileName: String
    private let executable: Bool
    private let limits: ExtractionLimits
    private var budget: DiskBudget
    /// A private directory for spooling zip files, which cannot be read as a stream.
    private let spoolDirectory: String
    private var pending = CircularBuffer<ByteBuffer>()
    private var current: ByteBuffer?
    private var sourceError: (any Error)?
    /// libarchive, once an extraction loaded it.
    private var libarchive: LibArchive?
    /// The symbolic links extracted so far, which later entries may not pass through.
    private var links = ArchivePathPolicy.ExtractedLinks()

    init(
        channel: ByteChannel, directory: String, plan: PayloadPlan, fileName: String, executable: Bool,
        limits: ExtractionLimits, budget: DiskBudget, spoolDirectory: String
    ) {
        self.budget = budget
        self.spoolDirectory = spoolDirectory
        self.channel = channel
        self.directory = directory
        self.plan = plan
        self.fileName = fileName
        self.executable = executable
        self.limits = limits
    }

    /// What was written.
    struct Written: Sendable {
        var bytes: Int64
        /// False when the payload was kept as one file.
        var extracted: Bool
    }

    /// Writes the payload. Runs on a thread of its own.
    func run() -> Result<Written, PayloadFailure> {
        let result = write()
        channel.closeConsumer(failed: (try? result.get()) == nil)
        return result
    }

    private func write() -> Result<Written, PayloadFailure> {
        var plan = plan
        if plan == .file { return writeFile().map { Written(bytes: $0, extracted: false) } }
        let head: [UInt8]
        switch sniffHead() {
        case .success(let bytes): head = bytes
        case .failure(let failure): return .failure(failure)
        }
        if plan == .sniff {
            plan = PayloadPlan.sniff(head)
            if plan == .archive, head.starts(with: [0x1F, 0x8B]) { plan = .gunzip }
        }
        // Zip keeps its directory (file types, symlinks) at the end: it needs a seekable file.
        let zip = plan != .file && head.starts(with: [0x50, 0x4B, 0x03, 0x04])
        switch plan {
        case .file, .sniff: return writeFile().map { Written(bytes: $0, extracted: false) }
        case .archive, .gunzip:
            return extract(allowRaw: plan == .gunzip, spool: zip).map { Written(bytes: $0, extracted: true) }
        }
    }

    /// Reads until 512 bytes (a tar header) or the end are buffered; the bytes stay queued.
    private func sniffHead() -> Result<[UInt8], PayloadFailure> {
        var head: [UInt8] = []
        while head.count < 512 {
            switch channel.next() {
            case .chunk(let chunk):
                pending.append(chunk)
                head += chunk.getBytes(at: chunk.readerIndex, length: min(chunk.readableBytes, 512 - head.count)) ?? []
            case .end: return .success(head)
            case .failed(let error): return .failure(.source(error))
            }
        }
        return .success(head)
    }

    private func nextChunk() -> Result<ByteBuffer?, PayloadFailure> {
        if let chunk = pending.popFirst() { return .success(chunk) }
        switch channel.next() {
        case .chunk(let chunk): return .success(chunk)
        case .end: return .success(nil)
        case .failed(let error): return .failure(.source(error))
        }
    }

    private func writeFile() -> Result<Int64, PayloadFailure> {
        let path = directory + "/" + fileName
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, executable ? 0o755 : 0o644)
        guard fd >= 0 else { return .failure(.io("cannot create \(path): \(errnoText())")) }
        defer { close(fd) }
        var total: Int64 = 0
        while true {
            switch nextChunk() {
            case .failure(let failure): return .failure(failure)
            case .success(nil):
                if executable { fchmod(fd, 0o755) }
                return .success(total)
            case .success(let chunk?):
                if let failure = budget.charge(chunk.readableBytes, under: directory) { return .failure(failure) }
                let ok = chunk.withUnsafeReadableBytes { bytes in writeAll(fd, bytes) }
                guard ok else { return .failure(.io("cannot write \(path): \(errnoText())")) }
                total += Int64(chunk.readableBytes)
            }
        }
    }

    /// Feeds libarchive one chunk: called from its read callback on this thread.
    fileprivate func read(_ archive: OpaquePointer?, _ buffer: UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int {
        while true {
            switch nextChunk() {
            case .failure(.source(let error)):
                sourceError = error
                if let libarchive { carchive_set_error(libarchive.setError, archive, EIO, "download failed") }
                return -1
            case .failure: return -1
            case .success(nil): return 0
            case .success(let chunk?):
                guard chunk.readableBytes > 0 else { continue }
                // libarchive may use the block until the next callback; `current` keeps its storage alive.
                current = chunk
                buffer?.pointee = chunk.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress) }
                return chunk.readableBytes
            }
        }
    }

    private func spoolToFile(_ path: String) -> PayloadFailure? {
        let fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return .io("cannot create \(path): \(errnoText())") }
        defer { close(fd) }
        while true {
            switch nextChunk() {
            case .failure(let failure): return failure
            case .success(nil): return nil
            case .success(let chunk?):
                if let failure = budget.charge(chunk.readableBytes, under: spoolDirectory, counted: false) {
                    return failure
                }
                guard chunk.withUnsafeReadableBytes({ writeAll(fd, $0) }) else {
                    return .io("cannot write \(path): \(errnoText())")
                }
            }
        }
    }

    private func extract(allowRaw: Bool, spool: Bool) -> Result<Int64, PayloadFailure> {
        let la: LibArchive
        switch LibArchive.loaded {
        case .success(let loaded): la = loaded
        case .failure(let failure): return .failure(.archive(failure.description))
        }
        libarchive = la
        guard let reader = la.readNew(), let disk = la.writeDiskNew() else {
            return .failure(.archive("libarchive could not allocate a reader"))
        }
        defer {
            _ = la.readFree(reader)
            _ = la.writeFree(disk)
        }
        _ = la.readSupportFilterAll(reader)
        _ = la.readSupportFormatAll(reader)
        if allowRaw { _ = la.readSupportFormatRaw(reader) }
        // Our own checks run first; these are libarchive's second line of defence.
        _ = la.writeDiskSetOptions(
            disk, ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT)
        let opened: Int32
        if spool {
            let path = spoolDirectory + "/spool.zip"
            if let failure = spoolToFile(path) { return .failure(failure) }
            defer { unlink(path) }
            opened = la.readOpenFilename(reader, path, 1 << 16)
        } else {
            let context = Unmanaged.passUnretained(self).toOpaque()
            opened = la.readOpen(
                reader, context, nil,
                { archive, context, buffer in
                    let writer = Unmanaged<PayloadWriter>.fromOpaque(context!).takeUnretainedValue()
                    return writer.read(archive, buffer)
                }, nil)
        }
        guard opened == ARCHIVE_OK else { return .failure(failure(la, reader, "cannot open archive")) }
        var entries = 0
        var total: Int64 = 0
        var entry: OpaquePointer?
        while true {
            let status = la.readNextHeader(reader, &entry)
            if status == ARCHIVE_EOF { break }
            guard status >= ARCHIVE_WARN, let entry else { return .failure(failure(la, reader, "bad archive header")) }
            entries += 1
            if entries > limits.maxEntries {
                return .failure(.tooLarge("more than \(limits.maxEntries) entries"))
            }
            let isRaw = la.format(reader) == ARCHIVE_FORMAT_RAW
            let name = isRaw ? rawName : entryName(la, entry)
            if let refusal = prepare(la, entry, name: name, raw: isRaw) { return .failure(refusal) }
            if la.entrySizeIsSet(entry) != 0, la.entrySize(entry) > limits.maxBytes - total {
                return .failure(
                    .tooLarge(
                        "entry '\(name)' declares \(la.entrySize(entry)) bytes, over the "
                            + "\(limits.maxBytes)-byte limit"))
            }
            guard la.writeHeader(disk, entry) >= ARCHIVE_WARN else {
                return .failure(.archive("cannot create '\(name)': \(la.errorText(disk))"))
            }
            var block: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            while true {
                let read = la.readDataBlock(reader, &block, &size, &offset)
                if read == ARCHIVE_EOF { break }
                guard read >= ARCHIVE_WARN else { return .failure(failure(la, reader, "cannot read '\(name)'")) }
                total += Int64(size)
                if total > limits.maxBytes {
                    return .failure(.tooLarge("more than \(limits.maxBytes) bytes extracted"))
                }
                if let failure = budget.charge(size, under: directory) { return .failure(failure) }
                guard la.writeDataBlock(disk, block, size, offset) >= ARCHIVE_WARN else {
                    return .failure(.io("cannot write '\(name)': \(la.errorText(disk))"))
                }
            }
            guard la.writeFinishEntry(disk) >= ARCHIVE_WARN else {
                return .failure(.io("cannot finish '\(name)': \(la.errorText(disk))"))
            }
        }
        guard la.writeClose(disk) >= ARCHIVE_WARN else { return .failure(.io(la.errorText(disk))) }
        return .success(total)
    }

    /// Checks the entry and points it into `directory`; returns a refusal for anything unsafe.
    private func prepare(_ la: LibArchive, _ entry: OpaquePointer, name: String, raw: Bool) -> PayloadFailure? {
        let clean: String
        switch ArchivePathPolicy.relativePath(name) {
        case .success(let path) where path.isEmpty:
            // "./" itself: the target directory already exists.
            la.entrySetPathname(entry, directory)
            return la.entryFiletype(entry) == 0o040000 ? nil : .unsafe(entry: name, reason: "not a directory")
        case .success(let path): clean = path
        case .failure(let refusal): return .unsafe(entry: name, reason: refusal.reason)
        }
        if let refusal = links.checkPath(clean) { return .unsafe(entry: name, reason: refusal.reason) }
        if let hardlink = la.entryHardlink(entry) {
            switch ArchivePathPolicy.hardlinkTarget(String(cString: hardlink)) {
            case .success(let target):
                if let refusal = links.checkHardlinkTarget(target) {
                    return .unsafe(entry: name, reason: refusal.reason)
                }
                la.entrySetHardlink(entry, directory + "/" + target)
            case .failure(let refusal): return .unsafe(entry: name, reason: refusal.reason)
            }
        } else {
            switch la.entryFiletype(entry) & 0o170000 {
            case 0o100000, 0o040000: break
            case 0o120000:
                let target = la.entrySymlink(entry).map { String(cString: $0) } ?? ""
                if let refusal = links.checkSymlink(path: clean, target: target) {
                    return .unsafe(entry: name, reason: refusal.reason)
                }
                links.record(path: clean, target: target)
            default:
                if !raw { return .unsafe(entry: name, reason: "devices, FIFOs and sockets are not installed") }
                la.entrySetFiletype(entry, 0o100000)
                la.entrySetPerm(entry, 0o644)
            }
        }
        la.entrySetPathname(entry, directory + "/" + clean)
        return nil
    }

    /// The name of a plain gzip file once decompressed.
    private var rawName: String {
        fileName.lowercased().hasSuffix(".gz") && fileName.count > 3 ? String(fileName.dropLast(3)) : fileName
    }

    private func entryName(_ la: LibArchive, _ entry: OpaquePointer) -> String {
        if let name = la.entryPathname(entry) { return String(cString: name) }
        if let name = la.entryPathnameUTF8(entry) { return String(cString: name) }
        return ""
    }

    private func failure(_ la: LibArchive, _ reader: OpaquePointer, _ what: String) -> PayloadFailure {
        if let sourceError { return .source(sourceError) }
        return .archive("\(what): \(la.errorText(reader))")
    }
}
