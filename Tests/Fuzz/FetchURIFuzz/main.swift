import FetchPolicy
import FuzzDriver

/// URIs from Spark properties and `CommandInfo.uris`: a FetchURI or a FetchError, never a crash;
/// a parsed URI parses again from its own text to the same URI.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFetchURI(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let uri = try? FetchURI(text) else { return 0 }
    _ = uri.effectiveName
    _ = uri.description
    let again = try? FetchURI(uri.value)
    precondition(again == uri, "'\(text)' parsed differently the second time")
    // A comma-separated list (spark.mesos.uris) is split before each piece becomes a FetchURI.
    for piece in (text + "," + text).split(separator: ",") { _ = try? FetchURI(String(piece)) }
    return 0
}

runFuzzer(fuzzFetchURI)
