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

    /// A forwarder whose sender is started as a child task of a group hosted here, as the
    /// runtime's queue of child tasks hosts it; counts the senders started. The group ends once
    /// `body` has returned and every sender is over.
    private func withForwarder(
        _ taskID: String, interval: Duration, sent: Sent, _ body: @escaping @Sendable (ProgressForwarder) async -> Void
    ) async -> Int {
        let queue = ChildTaskQueue()
        let started = Counter()
        await withDiscardingTaskGroup { group in
            group.addTask {
                let forwarder = ProgressForwarder(
                    taskID: taskID, interval: interval,
                    start: { job in
                        started.value.withLock { $0 += 1 }
                        return queue.add(job)
                    }
                ) { bytes in sent.messages.withLock { $0.append(bytes) } }
                await body(forwarder)
                queue.finish()
            }
            await queue.host(in: &group)
        }
        return started.value.withLock { $0 }
    }

    final class Counter: Sendable {
        let value = LockedValue(0)
    }

    @Test func reportsWithinOneIntervalBecomeOneMessageAndNoneFollowTheEnd() async {
        let sent = Sent()
        let senders = await withForwarder("t\"1", interval: .seconds(3600), sent: sent) { forwarder in
            await forwarder.forwarding {
                for step in 1...1000 { forwarder.report(Double(step) / 1000, message: "step \(step)") }
            }
            // However the reports and the sender interleaved, the first send starts an hour's
            // pause, which the end of the task's run ends.
            let first = sent.decoded
            #expect(first.count == 1)
            #expect(first.first?.sequence == 1)
            #expect(first.first?.taskID == "t\"1")
            #expect(first.first?.message.hasPrefix("step ") == true)
            forwarder.report(1, message: "after the end")
            #expect(sent.decoded.count == 1, "nothing after the task's run is over")
        }
        #expect(senders == 1, "one sender, started by the first report")
    }

    @Test func aTaskThatNeverReportsStartsNoSender() async {
        let sent = Sent()
        let senders = await withForwarder("t", interval: .zero, sent: sent) { forwarder in
            #expect(await forwarder.forwarding { 42 } == 42)
            forwarder.report(1, message: "after the end")
        }
        #expect(senders == 0)
        #expect(sent.decoded.isEmpty)
    }

    @Test func aReportThatNoSenderCanTakeIsDroppedAndTheRunStillEnds() async {
        let sent = Sent()
        let queue = ChildTaskQueue()
        queue.finish()
        let forwarder = ProgressForwarder(taskID: "t", interval: .zero, start: { queue.add($0) }) { bytes in
            sent.messages.withLock { $0.append(bytes) }
        }
        await forwarder.forwarding { forwarder.report(0.5, message: "half") }
        #expect(sent.decoded.isEmpty)
    }

    @Test func aReportMadeJustBeforeTheEndIsStillSent() async {
        let sent = Sent()
        _ = await withForwarder("t", interval: .seconds(3600), sent: sent) { forwarder in
            // The sender has not started when the run ends: the report was due, so it goes out
            // before `forwarding` returns.
            await forwarder.forwarding { forwarder.report(1, message: "done") }
            #expect(sent.decoded.map(\.message) == ["done"])
        }
    }

    @Test func messagesAreInOrderAndTheNewestWins() async {
        let sent = Sent()
        _ = await withForwarder("t", interval: .zero, sent: sent) { forwarder in
            await forwarder.forwarding {
                for step in 1...200 {
                    forwarder.report(Double(step) / 200, message: "step \(step)")
                    await Task.yield()
                }
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
