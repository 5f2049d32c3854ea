import AgentConnection
import ExecutorCore
import MesosCodec
import XCTest

final class ExecutorConfigurationTests: XCTestCase {
    private let base = [
        "MESOS_FRAMEWORK_ID": "fw", "MESOS_EXECUTOR_ID": "ex", "MESOS_AGENT_ENDPOINT": "127.0.0.1:5051",
        "MESOS_SANDBOX": "/sandbox", "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
    ]

    private func configuration(_ changes: [String: String?]) throws -> ExecutorConfiguration {
        var environment = base
        for (key, value) in changes { environment[key] = value }
        return try ExecutorConfiguration(environment: environment, workingDirectory: "/cwd")
    }

    private func assertError(_ changes: [String: String?], _ expected: String, line: UInt = #line) {
        XCTAssertThrowsError(try configuration(changes), line: line) { error in
            XCTAssertEqual("\(error)", expected, line: line)
        }
    }

    func testMinimalEnvironment() throws {
        let config = try configuration([:])
        XCTAssertEqual(config.frameworkID, "fw")
        XCTAssertEqual(config.endpoint.url, "http://127.0.0.1:5051/api/v1/executor")
        XCTAssertFalse(config.checkpoint)
        XCTAssertEqual(config.shutdownGracePeriod, .seconds(5))
        XCTAssertEqual(config.sandbox, "/sandbox")
        XCTAssertEqual(config.encoding, .protobuf)
    }

    func testCheckpointIsOneOrZeroNeverAWord() throws {
        XCTAssertFalse(
            try configuration(["MESOS_CHECKPOINT": "0"]).checkpoint, "pymesos reads \"0\" as true; we do not")
        let on = try configuration([
            "MESOS_CHECKPOINT": "1", "MESOS_RECOVERY_TIMEOUT": "15mins", "MESOS_SUBSCRIPTION_BACKOFF_MAX": "2secs",
        ])
        XCTAssertTrue(on.checkpoint)
        XCTAssertEqual(on.recoveryTimeout, .seconds(900))
        XCTAssertEqual(on.subscriptionBackoffMax, .seconds(2))
        assertError(["MESOS_CHECKPOINT": "true"], #"MESOS_CHECKPOINT='true' is malformed: expected "1" or "0""#)
    }

    func testCheckpointingNeedsItsTimeouts() {
        assertError(
            ["MESOS_CHECKPOINT": "1", "MESOS_SUBSCRIPTION_BACKOFF_MAX": "2secs"],
            "MESOS_RECOVERY_TIMEOUT is not set: expected a Mesos duration such as 5secs or 15mins")
    }

    func testMissingAndMalformedVariablesNameThemselves() {
        assertError(["MESOS_FRAMEWORK_ID": nil], "MESOS_FRAMEWORK_ID is not set: expected the framework id")
        assertError(
            ["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5 seconds"],
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD='5 seconds' is malformed: expected a Mesos duration such as 5secs or 15mins"
        )
        assertError(
            ["MESOS_AGENT_ENDPOINT": "localhost"],
            "MESOS_AGENT_ENDPOINT='localhost' is malformed: expected ip:port, e.g. 10.0.0.5:5051")
        assertError(
            ["SPARK_MESOS_EXECUTOR_ENCODING": "xml"],
            #"SPARK_MESOS_EXECUTOR_ENCODING='xml' is malformed: expected "protobuf" or "json""#)
    }

    func testEndpointFallbacks() throws {
        let pid = try configuration(["MESOS_AGENT_ENDPOINT": nil, "MESOS_SLAVE_PID": "slave(1)@10.0.0.5:5051"])
        XCTAssertEqual(pid.endpoint.url, "http://10.0.0.5:5051/api/v1/executor")
        let socket = try configuration(["MESOS_DOMAIN_SOCKET": "/run/agent.sock"])
        XCTAssertEqual(socket.endpoint.url, "http+unix://%2Frun%2Fagent.sock/slave(1)/api/v1/executor")
        let tls = try configuration(["LIBPROCESS_SSL_ENABLED": "true"])
        XCTAssertEqual(tls.endpoint.url, "https://127.0.0.1:5051/api/v1/executor")
        let sandbox = try configuration(["MESOS_SANDBOX": nil, "MESOS_DIRECTORY": "/dir"])
        XCTAssertEqual(sandbox.sandbox, "/dir")
    }

    func testDurations() {
        let cases: [(String, Duration?)] = [
            ("5secs", .seconds(5)), ("15mins", .seconds(900)), ("0.5secs", .milliseconds(500)),
            ("1500ms", .milliseconds(1500)), ("2hrs", .seconds(7200)), ("1days", .seconds(86400)),
            ("1weeks", .seconds(604_800)), ("10us", .microseconds(10)), ("7ns", .nanoseconds(7)),
            ("5", nil), ("secs", nil), ("-5secs", nil), ("5 secs", nil), ("5seconds", nil), (".5secs", nil),
            ("1.2.3secs", nil), ("", nil),
        ]
        for (text, expected) in cases { XCTAssertEqual(MesosDuration.parse(text), expected, text) }
        XCTAssertEqual(MesosDuration.format(.seconds(5)), "5secs")
        XCTAssertEqual(MesosDuration.format(.seconds(900)), "15mins")
        XCTAssertEqual(MesosDuration.format(.milliseconds(1500)), "1500ms")
    }

    func testTheExecutorsOwnVariables() throws {
        let defaults = try configuration([:])
        XCTAssertTrue(defaults.releasesCodeWhenIdle)
        XCTAssertFalse(defaults.standsInForCommandExecutor)
        XCTAssertNil(defaults.fetchMinimumFreeBytes)
        XCTAssertNil(defaults.sparkExecutorURI)
        let set = try configuration([
            "SPARK_MESOS_EXECUTOR_IDLE_RECLAIM": "0", "MESOS_HTTP_COMMAND_EXECUTOR": "1",
            "SPARK_MESOS_EXECUTOR_CACHE_DIR": "/cache", "SPARK_EXECUTOR_URI": "http://h/spark.tgz",
            "HADOOP_HOME": "/opt/hadoop", "PATH": "/usr/bin",
        ])
        XCTAssertFalse(set.releasesCodeWhenIdle)
        XCTAssertTrue(set.standsInForCommandExecutor)
        XCTAssertEqual(set.cacheDirectory, "/cache")
        XCTAssertEqual(set.sparkExecutorURI, "http://h/spark.tgz")
        XCTAssertEqual(set.hadoopHome, "/opt/hadoop")
        XCTAssertEqual(set.searchPath, "/usr/bin")
        assertError(
            ["SPARK_MESOS_EXECUTOR_IDLE_RECLAIM": "yes"],
            #"SPARK_MESOS_EXECUTOR_IDLE_RECLAIM='yes' is malformed: expected "1" or "0""#)
    }

    /// Moved from the fetch tests: the variable is read here, with every other one.
    func testFetchReserveFromTheEnvironment() throws {
        let name = "SPARK_MESOS_EXECUTOR_FETCH_MIN_FREE_BYTES"
        XCTAssertEqual(try configuration([name: "2147483648"]).fetchMinimumFreeBytes, 2 << 30)
        XCTAssertEqual(try configuration([name: "0"]).fetchMinimumFreeBytes, 0)
        for bad in ["", "1g", "-1", "12.5"] {
            assertError(
                [name: bad], "\(name)='\(bad)' is malformed: expected a whole number of bytes (0 keeps no reserve)")
        }
    }

    /// `--help` is generated from the table; the README's list of variables must name them all too.
    func testTheReadmeNamesEveryVariable() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let start = try XCTUnwrap(text.range(of: "## Running it under a Mesos agent"))
        let end = text.range(of: "\n## ", range: start.upperBound..<text.endIndex)?.lowerBound ?? text.endIndex
        let section = text[start.upperBound..<end]
        for variable in EnvironmentVariable.allCases {
            XCTAssertTrue(
                section.contains("`\(variable.name)`"),
                "README.md's section on running under an agent does not list \(variable.name)")
        }
    }
}
