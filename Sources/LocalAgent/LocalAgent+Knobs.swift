import Foundation
import MesosProto
import NIOCore

extension LocalAgent {
    /// Replaces `ExecutorInfo.data` for the next SUBSCRIBED and every later launch — for data that
    /// can only be written once the agent listens (a URL of a published file, say).
    public func setExecutorData(_ text: String) {
        machine.configuration.executorInfo.data = .init(text.utf8)
    }
}

extension LocalAgent {
    /// Writes `bytes` as they are onto the open event stream (no RecordIO framing added): for
    /// testing how an executor copes with a misbehaving agent (garbage records, bad lengths).
    /// Returns false when no stream is open.
    @discardableResult
    public func injectRawStreamBytes(_ bytes: [UInt8]) -> Bool {
        guard let sink = streams.values.first else { return false }
        sink.write(ByteBuffer(bytes: bytes))
        return true
    }
}

extension LocalAgent {
    /// From now on, UPDATE calls get 503 or lose their connection at random as `faults` says (nil:
    /// no more faults). Such a call is recorded with status 503 or 0 and its update is not stored.
    public func injectUpdateFaults(_ faults: UpdateFaults?) {
        apply { machine in
            machine.updateFaults = faults.map(UpdateFaults.Draws.init)
            return []
        }
    }
}
