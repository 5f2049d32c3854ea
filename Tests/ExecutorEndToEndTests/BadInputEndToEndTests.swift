import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import SystemTestLock
import Testing

/// A misbehaving agent: the executor reports a clear error and treats the stream as lost —
/// re-subscribing when checkpointing — and never crashes.
@Suite(.serialized, .systemTest)
struct BadInputEndToEndTests {
    private static let garbage: [(name: String, bytes: [UInt8])] = [
        ("a record that is not an Event", Array("7\nGARBAGE".utf8)),
        ("a malformed length", Array("12x\n{}".utf8)),
        ("a record larger than 64 MiB", Array("99999999999\n".utf8)),
    ]

    @Test func garbageOnTheStreamIsALostConnectionAndTheExecutorRecovers() async throws {
        for encoding in WireEncoding.allCases {
            for (name, bytes) in Self.garbage {
                try await ExecutorUnderTest.run(encoding: encoding, checkpoint: true) { test in
                    test.makeFIFO("go")
                    try await test.agent.launch(test.task("steady", "cat go > /dev/null"))
                    try await test.waitForStates(["steady": .taskRunning])
                    let injected = await test.agent.injectRawStreamBytes(bytes)
                    #expect(injected)
                    try await test.agent.waitUntil("re-subscribed after \(name)") {
                        $0.subscriptions == 2 && $0.hasOpenStream
                    }
                    try "go".write(toFile: test.path("go"), atomically: false, encoding: .utf8)
                    try await test.waitForStates(["steady": .taskFinished])
                    await test.agent.shutdown()
                }
            }
        }
    }

    @Test func unknownEventTypesAreIgnored() async throws {
        try await ExecutorUnderTest.run(encoding: .json) { test in
            let unknown = Array(#"{"type":"SOMETHING_NEW","something_new":{"x":1}}"#.utf8)
            var framed = Array(String(unknown.count).utf8) + [UInt8(ascii: "\n")] + unknown
            framed += Array("18\n".utf8) + Array(#"{"type":"UNKNOWN"}"#.utf8)
            await test.agent.injectRawStreamBytes(framed)
            try await test.agent.launch(test.task("after", "true"))
            try await test.waitForStates(["after": .taskFinished])
            let subscriptions = await test.agent.state.subscriptions
            #expect(subscriptions == 1, "the stream survived unknown event types")
            await test.agent.shutdown()
        }
    }
}
