import FetchPolicy
import PackageFetch
import SparkExecutor
import Testing

/// What Spark's properties ask the fetcher for (moved here from PackageFetch, which knows no Spark keys).
@Suite struct SparkFetchRequestTests {
    @Test func sparkProperties() throws {
        let request = try FetchRequest(
            sparkProperties: [
                "spark.executor.uri": "http://h/spark.tgz",
                "spark.mesos.uris": "http://h/a.jar, http://h/spark.tgz,,/b.py",
                "spark.mesos.executor.home": "/opt/spark",
            ], commandURIs: [try FetchURI("http://h/a.jar", executable: true), try FetchURI("/c.sh")])
        #expect(request.package?.value == "http://h/spark.tgz")
        #expect(request.additional.map(\.value) == ["http://h/a.jar", "/b.py", "/c.sh"])
        #expect(request.additional[0].executable == false)
        #expect(request.executorHome == "/opt/spark")
        // SPARK_EXECUTOR_URI reaches the request through the settings' properties.
        let settings = try SparkSettings(executorInfo: nil, commandLine: [:], sparkExecutorURI: "/s.tgz")
        let fromEnvironment = try FetchRequest(sparkProperties: settings.properties)
        #expect(fromEnvironment.package?.value == "/s.tgz")
    }
}
