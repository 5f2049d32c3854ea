import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import Testing

/// Every way the agent refuses a request (`Http::executor`'s checks, and what Mesos's `executor_http_api_tests.cpp` exercises), over real HTTP.
struct RejectionTests {
    let configuration = testConfiguration()
    var calls: Calls { Calls(configuration: configuration) }

    static let plainText = "text/plain; charset=utf-8"

    @Test func noContentTypeIs400() async throws {
        try await withLocalAgent(configuration) { agent in
            let response = try await roundTrip(port: agent.port, body: encoded(calls.subscribe(), .json))
            #expect(response.status == 400)
            #expect(response.header("Content-Type") == Self.plainText)
            #expect(response.text.contains("Content-Type"))
            #expect(await agent.state.violations.map(\.kind) == [.rejectedRequest])
        }
    }

    @Test func validJSONThatIsNotACallIs400() async throws {
        try await withLocalAgent(configuration) { agent in
            let response = try await roundTrip(
                port: agent.port,
                contentType: "application/json",
                body: Array(#"{"string":"valid_json"}"#.utf8)
            )
            #expect(response.status == 400)
        }
    }

    @Test(arguments: WireEncoding.allCases)
    func malformedContentIs400(encoding: WireEncoding) async throws {
        try await withLocalAgent(configuration) { agent in
            let response = try await roundTrip(
                port: agent.port,
                contentType: encoding.contentType,
                body: Array("MALFORMED_CONTENT".utf8)
            )
            #expect(response.status == 400)
        }
    }

    @Test(arguments: ["application/unknown-media-type", "application/json; charset=utf-8", "application/JSON"])
    func unsupportedContentTypeIs415(contentType: String) async throws {
        try await withLocalAgent(configuration) { agent in
            let response = try await roundTrip(
                port: agent.port,
                contentType: contentType,
                body: encoded(calls.subscribe(), .json)
            )
            #expect(response.status == 415)
            #expect(response.header("Content-Type") == Self.plainText)
        }
    }

    @Test(arguments: WireEncoding.allCases)
    func messageFromUnknownFrameworkIs400(encoding: WireEncoding) async throws {
        try await withLocalAgent(configuration) { agent in
            var call = calls.message("hello")
            call.frameworkID.value = "someone-else"
            let response = try await post(call, encoding, port: agent.port)
            #expect(response.status == 400)
            #expect(response.text == "Framework cannot be found")
        }
    }

    @Test(arguments: WireEncoding.allCases)
    func callFromUnknownExecutorIs400(encoding: WireEncoding) async throws {
        try await withLocalAgent(configuration) { agent in
            var call = calls.subscribe()
            call.executorID.value = "someone-else"
            let response = try await post(call, encoding, port: agent.port)
            #expect(response.status == 400)
            #expect(response.text == "Executor cannot be found")
        }
    }

    @Test(arguments: ["GET", "PUT", "DELETE"])
    func otherMethodsAre405WithAllow(method: String) async throws {
        try await withLocalAgent(configuration) { agent in
            let response = try await roundTrip(port: agent.port, method: method)
            #expect(response.status == 405)
            #expect(response.header("Allow") == "POST")
        }
    }

    @Test func unknownPathIs404() async throws {
        try await withLocalAgent(configuration) { agent in
            let response = try await post(calls.subscribe(), .json, port: agent.port, path: "/api/v1/scheduler")
            #expect(response.status == 404)
        }
    }

    @Test(arguments: WireEncoding.allCases)
    func notAcceptableIs406(encoding: WireEncoding) async throws {
        try await withLocalAgent(configuration) { agent in
            let response = try await roundTrip(
                port: agent.port,
                contentType: encoding.contentType,
                accept: "foo",
                body: encoded(calls.subscribe(), encoding)
            )
            #expect(response.status == 406)
        }
    }

    @Test(arguments: WireEncoding.allCases, [Mesos_V1_Executor_Call.TypeEnum.subscribe, .update, .message])
    func callWithoutItsSubMessageIs400(encoding: WireEncoding, type: Mesos_V1_Executor_Call.TypeEnum) async throws {
        try await withLocalAgent(configuration) { agent in
            let response = try await post(calls.call(type), encoding, port: agent.port)
            #expect(response.status == 400)
            #expect(response.text.hasPrefix("Failed to validate Executor::Call: Expecting '"))
        }
    }

    @Test(arguments: WireEncoding.allCases)
    func callWithoutTypeIs400(encoding: WireEncoding) async throws {
        try await withLocalAgent(configuration) { agent in
            var call = calls.subscribe()
            call.clearType()
            let response = try await post(call, encoding, port: agent.port)
            #expect(response.status == 400)
            #expect(response.text == "Failed to validate Executor::Call: Expecting 'type' to be present")
        }
    }

    /// StatusUpdateCallFailedValidation and friends (the names of Mesos's own tests in `executor_http_api_tests.cpp`).
    @Test(arguments: WireEncoding.allCases, InvalidUpdate.allCases)
    func invalidUpdateIs400(encoding: WireEncoding, invalid: InvalidUpdate) async throws {
        try await withLocalAgent(configuration) { agent in
            try await agent.launch(agent.makeTask("t1"))
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), encoding)
                var status = calls.status("t1", .taskRunning)
                invalid.apply(&status)
                let response = try await post(calls.update(status), encoding, port: agent.port)
                #expect(response.status == 400)
                #expect(response.text.hasPrefix("Failed to validate Executor::Call: "))
                #expect(await agent.state.updates.isEmpty)
            }
        }
    }

    enum InvalidUpdate: CaseIterable, Sendable {
        case foreignExecutorID, dummyUUID, noUUID, staging, sourceMaster, noSource, checkStatusWithoutType

        func apply(_ status: inout Mesos_V1_TaskStatus) {
            switch self {
            case .foreignExecutorID: status.executorID.value = "another-executor"
            case .dummyUUID: status.uuid = Data("dummy_uuid".utf8)
            case .noUUID: status.clearUuid()
            case .staging: status.state = .taskStaging
            case .sourceMaster: status.source = .master
            case .noSource: status.clearSource()
            case .checkStatusWithoutType: status.checkStatus = Mesos_V1_CheckStatusInfo()
            }
        }
    }

    @Test(arguments: WireEncoding.allCases, [Mesos_V1_Executor_Call.TypeEnum.update, .message])
    func callsBeforeSubscribeAre403(encoding: WireEncoding, type: Mesos_V1_Executor_Call.TypeEnum) async throws {
        try await withLocalAgent(configuration) { agent in
            try await agent.launch(agent.makeTask("t1"))
            let call = type == .update ? calls.update("t1", .taskRunning) : calls.message("hi")
            let response = try await post(call, encoding, port: agent.port)
            #expect(response.status == 403)
            #expect(response.text == "Executor is not subscribed")
        }
    }

    @Test(arguments: WireEncoding.allCases)
    func heartbeatIs202BeforeAnyLookup(encoding: WireEncoding) async throws {
        try await withLocalAgent(configuration) { agent in
            let response = try await post(calls.heartbeat(), encoding, port: agent.port)
            #expect(response.status == 202)
            #expect(response.header("Content-Length") == "0")
            #expect(await agent.state.violations.isEmpty)
        }
    }

    @Test(arguments: WireEncoding.allCases)
    func unknownCallTypeIs501(encoding: WireEncoding) async throws {
        try await withLocalAgent(configuration) { agent in
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), encoding)
                let response = try await post(calls.call(.unknown), encoding, port: agent.port)
                #expect(response.status == 501)
            }
        }
    }

    @Test func subscribeBeforeContainerizerRecoveryIs503ForEveryRequest() async throws {
        try await withLocalAgent(testConfiguration(checkpoint: true)) { agent in
            try await agent.restart(RestartPlan(comeBack: true, recoverContainerizer: false))
            for response in [
                try await post(calls.subscribe(), .protobuf, port: agent.port),
                try await post(calls.heartbeat(), .json, port: agent.port),
                try await roundTrip(port: agent.port, method: "GET"),
            ] {
                #expect(response.status == 503)
                #expect(response.text == "Agent has not finished recovery")
            }
            #expect(await agent.state.violations.isEmpty)
        }
    }
}

/// A call on a fresh connection to another path.
func post(_ call: Mesos_V1_Executor_Call, _ encoding: WireEncoding, port: Int, path: String) async throws -> RawResponse
{
    try await roundTrip(port: port, path: path, contentType: encoding.contentType, body: encoded(call, encoding))
}
