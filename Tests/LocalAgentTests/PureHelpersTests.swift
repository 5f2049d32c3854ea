import Foundation
import MesosCodec
import MesosProto
import Testing

@testable import LocalAgent

struct MediaTypeNegotiationTests {
    @Test(
        arguments: [
            (nil, WireEncoding.json),
            ("*/*", .json),
            ("application/*", .json),
            ("application/json", .json),
            ("application/x-protobuf", .protobuf),
            ("application/x-protobuf;q=0.9, application/json;q=0.1", .json),
            ("application/json;q=0, */*", .protobuf),
            ("application/json; q=0, application/*", .protobuf),
        ] as [(String?, WireEncoding)])
    func picksJSONWheneverAcceptable(accept: String?, expected: WireEncoding) {
        #expect(MediaTypeNegotiation.negotiate(acceptHeader: accept) == expected)
    }

    @Test(arguments: ["foo", "text/plain", "application/json;q=0, application/x-protobuf;q=0", "*/*;q=0"])
    func refusesWhatAllowsNeither(accept: String) {
        #expect(MediaTypeNegotiation.negotiate(acceptHeader: accept) == nil)
    }
}

struct StoutDurationTests {
    @Test(arguments: [
        (Duration.seconds(5), "5secs"), (.seconds(900), "15mins"), (.seconds(2), "2secs"),
        (.milliseconds(1500), "1500ms"), (.seconds(90), "90secs"), (.seconds(3600), "1hrs"),
        (.seconds(86400 * 7), "1weeks"), (.nanoseconds(7), "7ns"), (.zero, "0ns"),
    ])
    func printsTheLargestWholeUnit(duration: Duration, text: String) {
        #expect(MesosDuration.format(duration) == text)
    }
}

struct ExecutorCallValidationTests {
    let calls = Calls(configuration: LocalAgentConfiguration())

    @Test func acceptsAValidUpdate() {
        #expect(ExecutorCallValidation.validate(calls.update("t", .taskRunning)) == nil)
    }

    @Test func uuidMustBe16BytesWithVersion1To5() {
        #expect(ExecutorCallValidation.uuidProblem(Data("dummy_uuid".utf8)) != nil)
        #expect(ExecutorCallValidation.uuidProblem(Data(repeating: 0, count: 16)) != nil)
        var v4 = Data(repeating: 0, count: 16)
        v4[6] = 0x40
        #expect(ExecutorCallValidation.uuidProblem(v4) == nil)
    }

    @Test func checkStatusNeedsTypeAndMatchingMessage() {
        var status = calls.status("t", .taskRunning)
        status.checkStatus.type = .http
        #expect(ExecutorCallValidation.validate(calls.update(status)) != nil)
        status.checkStatus.http.statusCode = 200
        #expect(ExecutorCallValidation.validate(calls.update(status)) == nil)
    }
}

struct ExecutorEnvironmentTests {
    @Test func nonCheckpointingAgentWithoutAuthentication() {
        let configuration = LocalAgentConfiguration()
        let environment = configuration.executorEnvironment(port: 5051, sandboxDirectory: "/sandbox")
        #expect(
            environment == [
                "MESOS_FRAMEWORK_ID": "local-framework-0000",
                "MESOS_EXECUTOR_ID": "local-executor",
                "MESOS_AGENT_ENDPOINT": "127.0.0.1:5051",
                "MESOS_SLAVE_ID": "local-agent-S0",
                "MESOS_SLAVE_PID": "slave(1)@127.0.0.1:5051",
                "MESOS_DIRECTORY": "/sandbox",
                "MESOS_SANDBOX": "/sandbox",
                "MESOS_CHECKPOINT": "0",
                "MESOS_HTTP_COMMAND_EXECUTOR": "0",
                "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
                "LIBPROCESS_PORT": "0",
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ]
        )
    }

    @Test func checkpointingAuthenticatedAgentWithExecutorGracePeriod() {
        var configuration = LocalAgentConfiguration()
        configuration.checkpoint = true
        configuration.authenticationToken = "secret"
        configuration.executorInfo.shutdownGracePeriod.nanoseconds = 1_500_000_000
        var variable = Mesos_V1_Environment.Variable()
        variable.name = "PATH"
        variable.value = "/opt/bin"
        configuration.executorInfo.command.environment.variables = [variable]
        let environment = configuration.executorEnvironment(port: 1, sandboxDirectory: "/s")
        #expect(environment["MESOS_CHECKPOINT"] == "1")
        #expect(environment["MESOS_RECOVERY_TIMEOUT"] == "15mins")
        #expect(environment["MESOS_SUBSCRIPTION_BACKOFF_MAX"] == "2secs")
        #expect(environment["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] == "1500ms")
        #expect(environment["MESOS_EXECUTOR_AUTHENTICATION_TOKEN"] == "secret")
        #expect(environment["PATH"] == "/opt/bin")
    }
}
