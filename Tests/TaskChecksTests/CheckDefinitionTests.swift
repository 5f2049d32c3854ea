import MesosProto
import TaskChecks
import XCTest

final class CheckDefinitionTests: XCTestCase {
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

    func testDefaultsAreMesosDefaults() throws {
        var health = Mesos_V1_HealthCheck()
        health.type = .tcp
        health.tcp.port = 8080
        let definition = try CheckDefinition(health: health)
        XCTAssertEqual(definition.delay, .seconds(15))
        XCTAssertEqual(definition.interval, .seconds(10))
        XCTAssertEqual(definition.timeout, .seconds(20))
        XCTAssertEqual(definition.consecutiveFailures, 3)
        XCTAssertEqual(definition.gracePeriod, .seconds(10))
        XCTAssertEqual(definition.name, "TCP health check")
        health.timeoutSeconds = 0
        XCTAssertNil(try CheckDefinition(health: health).timeout, "0 means no timeout")
    }

    func testHealthCheckValidationUsesMesosWords() {
        XCTAssertEqual(healthError { _ in }, "HealthCheck must specify 'type'")
        XCTAssertEqual(healthError { $0.type = .unknown }, "'UNKNOWN' is not a valid health check type")
        XCTAssertEqual(healthError { $0.type = .http }, "Expecting 'http' to be set for HTTP health check")
        XCTAssertEqual(healthError { $0.type = .command }, "Expecting 'command' to be set for COMMAND health check")
        XCTAssertEqual(
            healthError {
                $0.type = .command
                $0.command.shell = true
            }, "Command health check must contain 'shell command'")
        XCTAssertEqual(
            healthError {
                $0.type = .http
                $0.http.port = 80
                $0.http.scheme = "ftp"
            }, "Unsupported HTTP health check scheme: 'ftp'")
        XCTAssertEqual(
            healthError {
                $0.type = .http
                $0.http.port = 80
                $0.http.path = "health"
            }, "The path 'health' of HTTP health check must start with '/'")
        XCTAssertEqual(
            healthError {
                $0.type = .tcp
                $0.tcp.port = 80
                $0.intervalSeconds = -1
            }, "Expecting 'interval_seconds' to be non-negative")
        XCTAssertEqual(
            healthError {
                $0.type = .tcp
                $0.tcp.port = 80
                $0.delaySeconds = .nan
            }, "Expecting 'delay_seconds' to be a finite number, got nan")
        XCTAssertEqual(
            healthError {
                $0.type = .tcp
                $0.tcp.port = 70000
            }, "The port 70000 of TCP health check is not in 1-65535")
    }

    func testCheckIsPlainHTTPOnIPv4() throws {
        var check = Mesos_V1_CheckInfo()
        check.type = .http
        check.http.port = 8080
        check.http.path = "/status"
        let definition = try CheckDefinition(check: check)
        XCTAssertEqual(definition.probe, .http(scheme: "http", port: 8080, path: "/status", ipv6: false))
        XCTAssertEqual(definition.kind, .check)
        check.http.path = "status"
        XCTAssertThrowsError(try CheckDefinition(check: check)) {
            XCTAssertEqual("\($0)", "The path 'status' of HTTP check must start with '/'")
        }
    }
}
