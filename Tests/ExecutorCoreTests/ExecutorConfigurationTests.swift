import AgentConnection
import ExecutorCore
import Foundation
import MesosCodec
import Testing

struct ExecutorConfigurationTests {
    private let base = [
        "MESOS_FRAMEWORK_ID": "fw", "MESOS_EXECUTOR_ID": "ex", "MESOS_AGENT_ENDPOINT": "127.0.0.1:5051",
        "MESOS_SANDBOX": "/sandbox", "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
    ]

    private func configuration(_ changes: [String: String?]) throws -> ExecutorConfiguration {
        var environment = base
        for (key, value) in changes { environment[key] = value }
        return try ExecutorConfiguration(environment: environment, workingDirectory: "/cwd")
    }

    private func assertError(
        _ changes: [String: String?], _ expected: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        if let error = #expect(
            throws: (any Error).self, sourceLocation: sourceLocation, performing: { try configuration(changes) })
        {
            #expect("\(error)" == expected, sourceLocation: sourceLocation)
        }
    }

    @Test func minimalEnvironment() throws {
        let config = try configuration([:])
        #expect(config.frameworkID == "fw")
        #expect(config.endpoint.description == "http://127.0.0.1:5051/api/v1/executor")
        #expect(!config.checkpoint)
        #expect(config.shutdownGracePeriod == .seconds(5))
        #expect(config.sandbox == "/sandbox")
        #expect(config.encoding == .protobuf)
    }

    @Test func checkpointIsOneOrZeroNeverAWord() throws {
        #expect(try !configuration(["MESOS_CHECKPOINT": "0"]).checkpoint, "pymesos reads \"0\" as true; we do not")
        let on = try configuration([
            "MESOS_CHECKPOINT": "1", "MESOS_RECOVERY_TIMEOUT": "15mins", "MESOS_SUBSCRIPTION_BACKOFF_MAX": "2secs",
        ])
        #expect(on.checkpoint)
        #expect(on.recoveryTimeout == .seconds(900))
        #expect(on.subscriptionBackoffMax == .seconds(2))
        assertError(["MESOS_CHECKPOINT": "true"], #"MESOS_CHECKPOINT='true' is malformed: expected "1" or "0""#)
    }

    @Test func checkpointingNeedsItsTimeouts() {
        assertError(
            ["MESOS_CHECKPOINT": "1", "MESOS_SUBSCRIPTION_BACKOFF_MAX": "2secs"],
            "MESOS_RECOVERY_TIMEOUT is not set: expected a Mesos duration such as 5secs or 15mins")
    }

    @Test func missingAndMalformedVariablesNameThemselves() {
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

    @Test func endpointFallbacks() throws {
        let pid = try configuration(["MESOS_AGENT_ENDPOINT": nil, "MESOS_SLAVE_PID": "slave(1)@10.0.0.5:5051"])
        #expect(pid.endpoint.description == "http://10.0.0.5:5051/api/v1/executor")
        let socket = try configuration(["MESOS_DOMAIN_SOCKET": "/run/agent.sock"])
        #expect(socket.endpoint.transport == .unixSocket("/run/agent.sock"))
        #expect(socket.endpoint.path == "/slave(1)/api/v1/executor")
        #expect(socket.endpoint.description == "unix:/run/agent.sock/slave(1)/api/v1/executor")
        let tls = try configuration(["LIBPROCESS_SSL_ENABLED": "true"])
        #expect(tls.endpoint.description == "https://127.0.0.1:5051/api/v1/executor")
        let sandbox = try configuration(["MESOS_SANDBOX": nil, "MESOS_DIRECTORY": "/dir"])
        #expect(sandbox.sandbox == "/dir")
    }

    @Test func durations() {
        let cases: [(String, Duration?)] = [
            ("5secs", .seconds(5)), ("15mins", .seconds(900)), ("0.5secs", .milliseconds(500)),
            ("1500ms", .milliseconds(1500)), ("2hrs", .seconds(7200)), ("1days", .seconds(86400)),
            ("1weeks", .seconds(604_800)), ("10us", .microseconds(10)), ("7ns", .nanoseconds(7)),
            ("5", nil), ("secs", nil), ("-5secs", nil), ("5 secs", nil), ("5seconds", nil), (".5secs", nil),
            ("1.2.3secs", nil), ("", nil),
        ]
        for (text, expected) in cases { #expect(MesosDuration.parse(text) == expected, "\(text)") }
        #expect(MesosDuration.format(.seconds(5)) == "5secs")
        #expect(MesosDuration.format(.seconds(900)) == "15mins")
        #expect(MesosDuration.format(.milliseconds(1500)) == "1500ms")
    }

    @Test func theExecutorsOwnVariables() throws {
        let defaults = try configuration([:])
        #expect(defaults.releasesCodeWhenIdle)
        #expect(!defaults.standsInForCommandExecutor)
        #expect(defaults.fetchMinimumFreeBytes == nil)
        #expect(defaults.sparkExecutorURI == nil)
        let set = try configuration([
            "SPARK_MESOS_EXECUTOR_IDLE_RECLAIM": "0", "MESOS_HTTP_COMMAND_EXECUTOR": "1",
            "SPARK_MESOS_EXECUTOR_CACHE_DIR": "/cache", "SPARK_EXECUTOR_URI": "http://h/spark.tgz",
            "HADOOP_HOME": "/opt/hadoop", "PATH": "/usr/bin",
        ])
        #expect(!set.releasesCodeWhenIdle)
        #expect(set.standsInForCommandExecutor)
        #expect(set.cacheDirectory == "/cache")
        #expect(set.sparkExecutorURI == "http://h/spark.tgz")
        #expect(set.hadoopHome == "/opt/hadoop")
        #expect(set.searchPath == "/usr/bin")
        assertError(
            ["SPARK_MESOS_EXECUTOR_IDLE_RECLAIM": "yes"],
            #"SPARK_MESOS_EXECUTOR_IDLE_RECLAIM='yes' is malformed: expected "1" or "0""#)
    }

    /// Moved from the fetch tests: the variable is read here, with every other one.
    @Test func fetchReserveFromTheEnvironment() throws {
        let name = "SPARK_MESOS_EXECUTOR_FETCH_MIN_FREE_BYTES"
        #expect(try configuration([name: "2147483648"]).fetchMinimumFreeBytes == 2 << 30)
        #expect(try configuration([name: "0"]).fetchMinimumFreeBytes == 0)
        for bad in ["", "1g", "-1", "12.5"] {
            assertError(
                [name: bad], "\(name)='\(bad)' is malformed: expected a whole number of bytes (0 keeps no reserve)")
        }
    }

    /// `--help` is generated from the table; the README's list of variables must name them all too.
    @Test func theReadmeNamesEveryVariable() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let start = try #require(text.range(of: "## Running it under a Mesos agent"))
        let end = text.range(of: "\n## ", range: start.upperBound..<text.endIndex)?.lowerBound ?? text.endIndex
        let section = text[start.upperBound..<end]
        for variable in EnvironmentVariable.allCases {
            #expect(
                section.contains("`\(variable.name)`"),
                "README.md's section on running under an agent does not list \(variable.name)")
        }
    }
}
