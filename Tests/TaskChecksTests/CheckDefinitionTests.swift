import MesosProto
import TaskChecks
import Testing

struct CheckDefinitionTests {
    private func healthError(_ fill: (inout Mesos_V1_HealthCheck) -> Void) -> String? {
        var health = Mesos_V1_HealthCheck()
        fill(&health)
        do {
            _ = try CheckDefinition(health: health)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func defaultsAreMesosDefaults() throws {
        var health = Mesos_V1_HealthCheck()
        health.type = .tcp
        health.tcp.port = 8080
        let definition = try CheckDefinition(health: health)
        #expect(definition.delay == .seconds(15))
        #expect(definition.interval == .seconds(10))
        #expect(definition.timeout == .seconds(20))
        #expect(definition.consecutiveFailures == 3)
        #expect(definition.gracePeriod == .seconds(10))
        #expect(definition.name == "TCP health check")
        health.timeoutSeconds = 0
        #expect(try CheckDefinition(health: health).timeout == nil, "0 means no timeout")
    }

    @Test func healthCheckValidationUsesMesosWords() {
        #expect(healthError { _ in } == "HealthCheck must specify 'type'")
        #expect(healthError { $0.type = .unknown } == "'UNKNOWN' is not a valid health check type")
        #expect(healthError { $0.type = .http } == "Expecting 'http' to be set for HTTP health check")
        #expect(healthError { $0.type = .command } == "Expecting 'command' to be set for COMMAND health check")
        #expect(
            healthError {
                $0.type = .command
                $0.command.shell = true
            } == "Command health check must contain 'shell command'")
        #expect(
            healthError {
                $0.type = .command
                $0.command.value = "curl -f localhost:8080\u{0}; rm -rf /"
            } == "Command health check holds a NUL character, which no program argument can carry")
        #expect(
            healthError {
                $0.type = .http
                $0.http.port = 80
                $0.http.scheme = "ftp"
            } == "Unsupported HTTP health check scheme: 'ftp'")
        #expect(
            healthError {
                $0.type = .http
                $0.http.port = 80
                $0.http.path = "health"
            } == "The path 'health' of HTTP health check must start with '/'")
        #expect(
            healthError {
                $0.type = .tcp
                $0.tcp.port = 80
                $0.intervalSeconds = -1
            } == "Expecting 'interval_seconds' to be non-negative")
        #expect(
            healthError {
                $0.type = .tcp
                $0.tcp.port = 80
                $0.delaySeconds = .nan
            } == "Expecting 'delay_seconds' to be a finite number, got nan")
        #expect(
            healthError {
                $0.type = .tcp
                $0.tcp.port = 70000
            } == "The port 70000 of TCP health check is not in 1-65535")
    }

    @Test func checkIsPlainHTTPOnIPv4() throws {
        var check = Mesos_V1_CheckInfo()
        check.type = .http
        check.http.port = 8080
        check.http.path = "/status"
        let definition = try CheckDefinition(check: check)
        #expect(definition.probe == .http(scheme: "http", port: 8080, path: "/status", ipv6: false))
        #expect(definition.kind == .check)
        check.http.path = "status"
        if let error = #expect(throws: (any Error).self, performing: { try CheckDefinition(check: check) }) {
            #expect("\(error)" == "The path 'status' of HTTP check must start with '/'")
        }
    }
}
