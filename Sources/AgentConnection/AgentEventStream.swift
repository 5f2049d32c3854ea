import MesosCodec
public import MesosProto
import NIOCore
import NIOHTTP1

/// The events of one SUBSCRIBE stream, decoded from RecordIO records.
///
/// Iteration ends normally when the agent closes the stream with the terminating chunk, and throws
/// ``AgentError`` when the stream breaks off or carries a record that cannot be decoded — both
/// mean the executor is disconnected. A stream is iterated once; its connection is closed once the
/// stream and its iterator are gone.
public struct AgentEventStream: AsyncSequence, Sendable {
    public typealias Element = Mesos_V1_Executor_Event

    private let body: EventStreamBody
    private let encoding: WireEncoding
    private let maximumEventSize: Int

    init(body: EventStreamBody, encoding: WireEncoding, maximumEventSize: Int) {
        self.body = body
        self.encoding = encoding
        self.maximumEventSize = maximumEventSize
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(
            body: body, parts: body.takeParts(), decoder: RecordIODecoder(maximumRecordSize: maximumEventSize),
            encoding: encoding)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        /// Keeps the connection open while the iterator lives.
        let body: EventStreamBody
        /// The rest of the answer after its head; nil if the stream was already being read.
        var parts: EventStreamBody.Parts.AsyncIterator?
        var decoder: RecordIODecoder
        let encoding: WireEncoding
        var pending = ByteBuffer()
        var ended = false

        public mutating func next() async throws(AgentError) -> Mesos_V1_Executor_Event? {
            do {
                guard let record = try await nextRecord() else { return nil }
                return try encoding.decode(Mesos_V1_Executor_Event.self, from: record.readableBytesView)
            } catch {
                throw AgentError.streamFailed(error)
            }
        }

        private mutating func nextRecord() async throws -> ByteBuffer? {
            while true {
                if ended { return try decoder.decodeLast(buffer: &pending, seenEOF: true) }
                if let record = try decoder.decode(buffer: &pending) { return record }
                guard parts != nil else { throw EventStreamError.readTwice }
                switch try await parts!.next() {
                case .body(let chunk):
                    pending.discardReadBytes()
                    pending.writeImmutableBuffer(chunk)
                case .end:
                    ended = true
                case .head:
                    throw EventStreamError.secondAnswer
                case nil:
                    // The connection closed without the stream's terminating chunk.
                    throw EventStreamError.brokeOff
                }
            }
        }
    }
}
