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

/// A directory that cannot be removed (wholly) is left: cleaning up never fails a test.
private func removeTemporaryDirectory(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}
