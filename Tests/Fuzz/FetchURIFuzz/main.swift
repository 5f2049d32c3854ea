import FuzzDriver
@testable import PackageFetch

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
    let properties = ["spark.executor.uri": text, "spark.mesos.uris": text + "," + text]
    _ = try? FetchRequest(sparkProperties: properties)
    return 0
}

runFuzzer(fuzzFetchURI)
