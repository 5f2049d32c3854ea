import Foundation
import LocalAgent
import MesosCodec
import MesosProto

extension RawHTTPConnection {
    /// Sends SUBSCRIBE (Accept = `encoding` unless given) and reads the response head.
    func subscribe(
        _ call: Mesos_V1_Executor_Call,
        _ encoding: WireEncoding,
        accept: String? = nil,
        authorization: String? = nil
    ) async throws -> RawResponse {
        try await request(
            contentType: encoding.contentType,
            accept: accept ?? encoding.contentType,
            authorization: authorization,
            body: encoded(call, encoding)
        )
        return try await readHead()
    }

    /// Reads the next event, failing the test's expectations loudly if the stream ended.
    func nextEvent(_ encoding: WireEncoding) async throws -> Mesos_V1_Executor_Event {
        guard let event = try await readEvent(encoding) else { throw StreamEnd.abrupt }
        return event
    }

    /// Reads events until one of `type` arrives (skipping e.g. heartbeats).
    func nextEvent(
        _ type: Mesos_V1_Executor_Event.TypeEnum,
        _ encoding: WireEncoding
    ) async throws -> Mesos_V1_Executor_Event {
        while true {
            let event = try await nextEvent(encoding)
            if event.type == type { return event }
        }
    }
}

/// One call on a fresh connection.
func post(
    _ call: Mesos_V1_Executor_Call,
    _ encoding: WireEncoding,
    port: Int,
    authorization: String? = nil
) async throws -> RawResponse {
    try await roundTrip(
        port: port,
        contentType: encoding.contentType,
        authorization: authorization,
        body: encoded(call, encoding)
    )
}

/// A configuration with a short heartbeat off by default and a fresh container id.
func testConfiguration(checkpoint: Bool = false, _ change: (inout LocalAgentConfiguration) -> Void = { _ in })
    -> LocalAgentConfiguration
{
    var configuration = LocalAgentConfiguration()
    configuration.checkpoint = checkpoint
    change(&configuration)
    return configuration
}
