public import FetchPolicy
public import PackageFetch

extension FetchRequest {
    /// What Spark's properties ask to be fetched: `spark.executor.uri` (the package; `SPARK_EXECUTOR_URI`
    /// is merged into it by ``SparkSettings``), `spark.mesos.uris` (comma-separated) and a command
    /// task's URIs, and `spark.mesos.executor.home`. A URI listed twice is fetched once, with the flags
    /// of its first mention.
    public init(sparkProperties: [String: String], commandURIs: [FetchURI] = []) throws(FetchError) {
        let executorURI = sparkProperties["spark.executor.uri"]?.trimmingWhitespace()
        let package = try executorURI.flatMap { value throws(FetchError) in value.isEmpty ? nil : try FetchURI(value) }
        var seen = Set(package.map { [$0.location] } ?? [])
        var additional: [FetchURI] = []
        for value in (sparkProperties["spark.mesos.uris"] ?? "").split(separator: ",") {
            let text = String(value).trimmingWhitespace()
            guard !text.isEmpty else { continue }
            let uri = try FetchURI(text)
            if seen.insert(uri.location).inserted { additional.append(uri) }
        }
        for uri in commandURIs where seen.insert(uri.location).inserted { additional.append(uri) }
        self.init(
            package: package, additional: additional,
            executorHome: sparkProperties["spark.mesos.executor.home"].flatMap { $0.isEmpty ? nil : $0 })
    }
}
