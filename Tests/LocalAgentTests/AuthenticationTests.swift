import LocalAgent
import MesosCodec
import MesosProto
import Testing

/// `Authorization: Bearer` on every call when the agent authenticates executors (`--authenticate_http_executors`).
struct AuthenticationTests {
    let configuration = testConfiguration { $0.authenticationToken = "s3cret" }
    var calls: Calls { Calls(configuration: configuration) }

    @Test(arguments: WireEncoding.allCases)
    func missingTokenIs401WithRealm(encoding: WireEncoding) async throws {
        try await withLocalAgent(configuration) { agent in
            let response = try await post(calls.subscribe(), encoding, port: agent.port)
            #expect(response.status == 401)
            #expect(response.header("WWW-Authenticate") == #"Bearer realm="mesos-agent-executor""#)
        }
    }

    @Test(arguments: ["Bearer wrong", "bearer s3cret", "Bearer  s3cret", "Basic czNjcmV0"])
    func wrongTokenIs401InvalidToken(authorization: String) async throws {
        try await withLocalAgent(configuration) { agent in
            let response = try await post(calls.subscribe(), .json, port: agent.port, authorization: authorization)
            #expect(response.status == 401)
            #expect(
                response.header("WWW-Authenticate") == #"Bearer realm="mesos-agent-executor", error="invalid_token""#
            )
        }
    }

    @Test func rightTokenSubscribes() async throws {
        try await withLocalAgent(configuration) { agent in
            #expect(await agent.environment()["MESOS_EXECUTOR_AUTHENTICATION_TOKEN"] == "s3cret")
            try await withConnection(port: agent.port) { stream in
                let head = try await stream.subscribe(calls.subscribe(), .protobuf, authorization: "Bearer s3cret")
                #expect(head.status == 200)
                #expect(try await stream.nextEvent(.protobuf).type == .subscribed)
            }
            let heartbeat = try await post(
                calls.heartbeat(), .protobuf, port: agent.port, authorization: "Bearer s3cret")
            #expect(heartbeat.status == 202)
        }
    }
}
