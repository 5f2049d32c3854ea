import AsyncHTTPClient
import MesosCodec
public import MesosProto
import NIOCore

/// The events of one SUBSCRIBE stream, decoded from RecordIO records.
///
/// Iteration ends normally when the agent closes the stream with the terminating chunk, and throws
/// ``AgentError`` when the stream breaks off or carries a record that cannot be decoded — both
/// mean the executor is disconnected.
public struct AgentEventStream: AsyncSequence, Sendable {
    public typealias Element = Mesos_V1_Executor_Event

    private let body: HTTPClientResponse.Body
    private let encoding: WireEncoding
    private let maximumEventSize: Int

    init(body: HTTPClientResponse.Body, encoding: WireEncoding, maximumEventSize: Int) {
        self.body = body
        self.encoding = encoding
        self.maximumEventSize = maximumEventSize
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(
            records: body.decode(using: RecordIODecoder(maximumRecordSize: maximumEventSize)).makeAsyncIterator(),
            encoding: encoding)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        var records: NIODecodedAsyncSequence<HTTPClientResponse.Body, RecordIODecoder>.AsyncIterator
        let encoding: WireEncoding

        public mutating func next() async throws(AgentError) -> Mesos_V1_Executor_Event? {
            let record: ByteBuffer?
            do {
                record = try await records.next()
            } catch {
                throw AgentError.streamFailed(error)
            }
            guard let record else { return nil }
            do {
                return try encoding.decode(Mesos_V1_Executor_Event.self, from: record.readableBytesView)
            } catch {
                throw AgentError.streamFailed(error)
            }
        }
    }
}
