import MesosCodec
import MesosProto
import SeededRandom
import Testing

/// Hardening: every valid document, mutated thousands of ways, decodes or fails with a
/// `CodecError` — never a crash, a hang or another error type. Deterministic (seeded).
struct MutationTests {
    private func mutate(_ bytes: [UInt8], _ random: inout SeededRandom) -> [UInt8] {
        var result = bytes
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            guard !result.isEmpty else { break }
            let index = Int.random(in: 0..<result.count, using: &random)
            switch Int.random(in: 0..<5, using: &random) {
            case 0: result[index] = UInt8.random(in: 0...255, using: &random)
            case 1: result.remove(at: index)
            case 2: result.insert(UInt8.random(in: 0...255, using: &random), at: index)
            case 3: result = Array(result[..<index])
            default:
                let interesting = Array(#"{}[]",:0-1e999"true"null\u0000"#.utf8)
                result[index] = interesting[Int.random(in: 0..<interesting.count, using: &random)]
            }
        }
        return result
    }

    private func assertOnlyCodecErrors(
        _ body: () throws -> Void, _ input: [UInt8], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        do {
            try body()
        } catch {
            #expect(
                error is CodecError, "\(type(of: error)) for \(String(decoding: input, as: UTF8.self))",
                sourceLocation: sourceLocation)
        }
    }

    @Test func mutatedJSONEventsAndCalls() {
        var random = SeededRandom(seed: 0x5EED)
        let events = MesosJSONTests.events.values.map { Array($0.utf8) }
        let calls = MesosJSONTests.calls.values.map { Array($0.utf8) }
        for _ in 0..<4000 {
            let event = mutate(events[Int.random(in: 0..<events.count, using: &random)], &random)
            assertOnlyCodecErrors(
                { _ = try WireEncoding.json.decode(Mesos_V1_Executor_Event.self, from: event) }, event)
            let call = mutate(calls[Int.random(in: 0..<calls.count, using: &random)], &random)
            assertOnlyCodecErrors({ _ = try WireEncoding.json.decode(Mesos_V1_Executor_Call.self, from: call) }, call)
        }
    }

    @Test func mutatedProtobufEvents() throws {
        var random = SeededRandom(seed: 0xC0FFEE)
        let events = try MesosJSONTests.events.values.map { text in
            try WireEncoding.protobuf.encode(
                WireEncoding.json.decode(Mesos_V1_Executor_Event.self, from: Array(text.utf8)))
        }
        for _ in 0..<8000 {
            let bytes = mutate(events[Int.random(in: 0..<events.count, using: &random)], &random)
            assertOnlyCodecErrors(
                { _ = try WireEncoding.protobuf.decode(Mesos_V1_Executor_Event.self, from: bytes) }, bytes)
        }
    }
}
