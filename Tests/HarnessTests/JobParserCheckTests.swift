import HarnessJobs
import Foundation
import Harness
import MesosProto
import Testing

/// `health_check`, `check` and `max_completion_time` in job files.
struct JobParserCheckTests {
    private func assertError(_ text: String, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
        if let error = #expect(
            throws: (any Error).self, sourceLocation: sourceLocation,
            performing: { try JobParser.parse(text, file: "job.json") })
        {
            #expect("\(error)" == expected, sourceLocation: sourceLocation)
        }
    }

    @Test func fieldsBecomeTheTaskInfoFields() throws {
        let job = try JobParser.parse(
            """
            {"tasks": [
              {"id": "web", "command": "exec sleep 60", "max_completion_time": 90,
               "health_check": {"type": "https", "port": 8443, "path": "/health", "delay_seconds": 1,
                                "interval_seconds": 2, "timeout_seconds": 3, "consecutive_failures": 4,
                                "grace_period_seconds": 5},
               "check": {"type": "COMMAND", "command": {"value": "test -e up", "environment": {"A": "b"}}}},
              {"id": "db", "command": "true", "health_check": {"type": "TCP", "port": 5432}}
            ]}
            """, file: "j.json")
        let web = try #require(job.task("web"))
        let health = try #require(web.healthCheck)
        #expect(health.type == .http)
        #expect(health.http.scheme == "https")
        #expect(health.http.port == 8443)
        #expect(health.http.path == "/health")
        #expect(
            [health.delaySeconds, health.intervalSeconds, health.timeoutSeconds, health.gracePeriodSeconds] == [
                1, 2, 3, 5,
            ])
        #expect(health.consecutiveFailures == 4)
        #expect(web.check?.type == .command)
        #expect(web.check?.command.command.value == "test -e up")
        #expect(web.check?.command.command.environment.variables.first?.name == "A")
        #expect(web.maxCompletionTime == .seconds(90))
        let db = try #require(job.task("db")?.healthCheck)
        #expect(db.type == .tcp)
        #expect(db.tcp.port == 5432)
        #expect(!db.hasDelaySeconds, "unset fields keep Mesos's defaults")
    }

    @Test func badValuesNameTheKey() {
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "health_check": {"port": 80}}]}"#,
            "invalid job file job.json: tasks[0].health_check.type: missing; expected one of COMMAND, HTTP, HTTPS, TCP")
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "check": {"type": "HTTPS", "port": 80}}]}"#,
            "invalid job file job.json: tasks[0].check.type: the string \"HTTPS\" is not valid; expected one of COMMAND, HTTP, TCP"
        )
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "health_check": {"type": "HTTP", "port": 70000}}]}"#,
            "invalid job file job.json: tasks[0].health_check.port: is the number 70000; expected a port 1-65535")
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "health_check": {"type": "HTTP", "port": 80, "path": "x"}}]}"#,
            "invalid job file job.json: tasks[0].health_check.path: \"x\" does not start with '/'")
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "health_check": {"type": "TCP", "port": 1, "command": "x"}}]}"#,
            "invalid job file job.json: tasks[0].health_check.command: is only for a COMMAND check; this one is TCP")
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "health_check": {"type": "COMMAND"}}]}"#,
            "invalid job file job.json: tasks[0].health_check.command: missing; expected the command a COMMAND check runs"
        )
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "check": {"type": "TCP", "port": 1, "interval_seconds": -2}}]}"#,
            "invalid job file job.json: tasks[0].check.interval_seconds: is the number -2; expected a number of seconds between 0 and 86400"
        )
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "health_check": {"type": "TCP", "port": 1, "consecutive_failures": 1.5}}]}"#,
            "invalid job file job.json: tasks[0].health_check.consecutive_failures: is the number 1.5; expected a whole number of failures"
        )
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "max_completion_time": 0}]}"#,
            "invalid job file job.json: tasks[0].max_completion_time: is the number 0; expected a number of seconds above 0 and below 86400"
        )
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "check": {"type": "TCP", "port": 1, "grace_period_seconds": 1}}]}"#,
            "invalid job file job.json: tasks[0].check.grace_period_seconds: unknown key; expected one of type, command, port, path, delay_seconds, interval_seconds, timeout_seconds"
        )
    }
}
