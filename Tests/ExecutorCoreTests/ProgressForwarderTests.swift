import ExecutorCore
import Foundation
import MesosCodec
import SystemSupport
import Testing

struct ProgressForwarderTests {
    /// What was sent, decoded: (sequence, fraction, message).
    final class Sent: Sendable {
        let messages = LockedValue<[[UInt8]]>([])
        var decoded: [(sequence: Int, fraction: Double, message: String, taskID: String)] {
            messages.withLock { $0 }.map { bytes in
                guard case .object(let top) = try? JSONValue.parse(bytes), top.count == 1, top[0].key == "progress",
                    case .object(let fields) = top[0].value
                else { return (-1, -1, "not a progress message", "") }
                var result = (sequence: -1, fraction: -1.0, message: "", taskID: "")
                for field in fields {
                    switch (field.key, field.value) {
                    case ("sequence", .number(let text)): result.sequence = Int(text) ?? -1
                    case ("fraction", .number(let text)): result.fraction = Double(text) ?? -1
                    case ("message", .string(let text)): result.message = text
                    case ("task_id", .string(let text)): result.taskID = text
                    default: break
                    }
                }
                return result
            }
        }
    }

    @Test func reportsWithinOneIntervalBecomeOneMessageAndNoneFollowTheEnd() async {
        let sent = Sent()
        let forwarder = ProgressForwarder(taskID: "t\"1", interval: .seconds(3600)) { bytes in
            sent.messages.withLock { $0.append(bytes) }
        }
        await forwarder.forwarding {
            for step in 1...1000 { forwarder.report(Double(step) / 1000, message: "step \(step)") }
        }
        // However the reports and the sender interleaved, the first send starts an hour's pause.
        let first = sent.decoded
        #expect(first.count == 1)
        #expect(first.first?.sequence == 1)
        #expect(first.first?.taskID == "t\"1")
        #expect(first.first?.message.hasPrefix("step ") == true)
        forwarder.report(1, message: "after the end")
        #expect(sent.decoded.count == 1, "nothing after the task's run is over")
    }

    @Test func messagesAreInOrderAndTheNewestWins() async {
        let sent = Sent()
        let forwarder = ProgressForwarder(taskID: "t", interval: .zero) { bytes in
            sent.messages.withLock { $0.append(bytes) }
        }
        await forwarder.forwarding {
            for step in 1...200 {
                forwarder.report(Double(step) / 200, message: "step \(step)")
                await Task.yield()
            }
        }
        let decoded = sent.decoded
        #expect(decoded.count >= 1)
        #expect(decoded.count <= 200)
        #expect(decoded.map(\.sequence) == Array(1...decoded.count), "sequence counts from 1 without gaps")
        #expect(decoded.map(\.fraction) == decoded.map(\.fraction).sorted(), "in the order reported")
        #expect(Set(decoded.map(\.message)).count == decoded.count, "no report is sent twice")
    }

    @Test func theMessageIsOneJSONObjectNamingTheTask() {
        let text = String(
            decoding: ProgressForwarder.message(
                taskID: "a\nb", report: .init(fraction: 0.25, message: "half \"way\""), sequence: 3), as: UTF8.self)
        #expect(text == #"{"progress":{"task_id":"a\nb","fraction":0.25,"message":"half \"way\"","sequence":3}}"#)
    }
}
