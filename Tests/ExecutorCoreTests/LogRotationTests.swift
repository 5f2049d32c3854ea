import ExecutorCore
import ProcessSupervision
import SparkExecutor
import Testing

/// Where the log limits come from: the executor's environment, then Spark properties. The files
/// themselves are tested with ProcessSupervision (RotatingLogFileTests).
struct LogRotationTests {
    @Test func theEnvironmentAndSparkPropertiesSetTheLimits() throws {
        var environment = [
            "MESOS_FRAMEWORK_ID": "fw", "MESOS_EXECUTOR_ID": "ex", "MESOS_AGENT_ENDPOINT": "127.0.0.1:5051",
        ]
        #expect(try ExecutorConfiguration(environment: environment, workingDirectory: "/").logRotation == .default)
        environment["SPARK_MESOS_EXECUTOR_LOG_MAX_SIZE"] = "64KB"
        environment["SPARK_MESOS_EXECUTOR_LOG_MAX_FILES"] = "2"
        let base = try ExecutorConfiguration(environment: environment, workingDirectory: "/").logRotation
        #expect(base == LogRotation(maximumFileBytes: 65536, rotatedFiles: 2))
        for (name, value, expected) in [
            ("SPARK_MESOS_EXECUTOR_LOG_MAX_SIZE", "1KB", "a size of at least 4KB, such as 10MB"),
            ("SPARK_MESOS_EXECUTOR_LOG_MAX_SIZE", "lots", "a size of at least 4KB, such as 10MB"),
            ("SPARK_MESOS_EXECUTOR_LOG_MAX_FILES", "-1", "a count from 0 to 1000"),
        ] {
            var bad = environment
            bad[name] = value
            if let error = #expect(
                throws: (any Error).self,
                performing: { try ExecutorConfiguration(environment: bad, workingDirectory: "/") })
            {
                #expect("\(error)" == "\(name)='\(value)' is malformed: expected \(expected)")
            }
        }
        let settings = try SparkSettings(
            executorInfo: nil,
            commandLine: [
                "spark.executor.logs.rolling.maxSize": "1048576", "spark.executor.logs.rolling.maxRetainedFiles": "0",
            ])
        #expect(settings.logRotation(overriding: base) == LogRotation(maximumFileBytes: 1 << 20, rotatedFiles: 0))
        #expect(try SparkSettings(executorInfo: nil, commandLine: [:]).logRotation(overriding: base) == base)
        #expect(throws: (any Error).self) {
            try SparkSettings(
                executorInfo: nil, commandLine: ["spark.executor.logs.rolling.maxSize": "10 parsecs"])
        }
    }
}
