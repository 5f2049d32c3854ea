import FetchPolicy
import NIOCore
import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Streams a local file (file:// or a plain path, or what `hadoop fs -cat` wrote) into a sink.
/// Reads come from the page cache in 1 MiB blocks, short enough not to hold a cooperative thread long.
struct LocalSource {
    let uri: FetchURI
    let path: String
    /// Whose permissions the file is opened with (a task of another user's URI, as Mesos's fetcher
    /// runs as the task's user); nil: the executor's.
    var user: UserIdentity? = nil

    func stream(into sink: DownloadSink) async throws(StreamFailure) {
        let fd = user.map { $0.open(path, flags: O_RDONLY | O_CLOEXEC) } ?? open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            let cause =
                code == ENOENT
                ? "no such file '\(path)' on this agent"
                : "cannot open '\(path)'\(user.map { " as user \($0.name)" } ?? ""): \(errnoText(code))"
            throw .fetch(.localFile(uri.value, cause))
        }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            throw .fetch(.localFile(uri.value, "'\(path)' is a directory, not a file or archive"))
        }
        sink.expectedBytes = Int64(info.st_size)
        let allocator = ByteBufferAllocator()
        while true {
            if Task.isCancelled { throw .fetch(.cancelled(uri.value)) }
            var buffer = allocator.buffer(capacity: 1 << 20)
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { bytes in
                var result: Int
                repeat { result = read(fd, bytes.baseAddress, bytes.count) } while result < 0 && errno == EINTR
                return max(result, 0)
            }
            if count == 0 {
                break
            }
            guard await sink.deliver(buffer) else { throw .extractionFailed }
        }
        if sink.bytes < Int64(info.st_size) {
            throw .fetch(.localFile(uri.value, "cannot read '\(path)': \(errnoText())"))
        }
    }
}
