import Foundation
import MesosCodec
import MesosProto
import Testing

/// The places where stout's JSON differs from the proto3 mapping (stout's `protobuf.hpp`).
struct MesosJSONRulesTests {
    private func event(_ text: String) throws -> Mesos_V1_Executor_Event {
        try WireEncoding.json.decode(Mesos_V1_Executor_Event.self, from: Array(text.utf8))
    }

    private func assertRejected(
        _ text: String, containing fragment: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        if let error = #expect(
            throws: (any Error).self, sourceLocation: sourceLocation, performing: { try event(text) })
        {
            #expect(error is CodecError, sourceLocation: sourceLocation)
            #expect("\(error)".contains(fragment), "\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func booleansMayBeStrings() throws {
        let text = #"""
            {"type":"SUBSCRIBED","subscribed":{"executor_info":{"executor_id":{"value":"e"}},
             "framework_info":{"user":"u","name":"n","checkpoint":"true"},"agent_info":{"hostname":"h"}}}
            """#
        #expect(try event(text).subscribed.frameworkInfo.checkpoint)
        assertRejected(text.replacingOccurrences(of: #""true""#, with: #""yes""#), containing: "expected a boolean")
    }

    @Test func objectForARepeatedFieldIsOneElement() throws {
        let text = #"""
            {"type":"LAUNCH_GROUP","launch_group":{"task_group":{"tasks":
              {"name":"a","task_id":{"value":"g1"},"agent_id":{"value":"a1"}}}}}
            """#
        #expect(try event(text).launchGroup.taskGroup.tasks.map(\.taskID.value) == ["g1"])
    }

    @Test func nullMeansAbsent() throws {
        let text = #"{"type":"KILL","kill":{"task_id":{"value":"t"},"kill_policy":null}}"#
        #expect(try !event(text).kill.hasKillPolicy)
        assertRejected(#"{"type":"KILL","kill":{"task_id":null}}"#, containing: "required")
    }

    @Test func enumsMustBeNames() throws {
        assertRejected(#"{"type":5,"message":{"data":""}}"#, containing: "enum must be given by name")
        // An unknown name in an optional enum is dropped, as stout does.
        #expect(try event(#"{"type":"FUTURE_EVENT"}"#).type == .unknown)
        #expect(throws: (any Error).self) {
            try WireEncoding.json.decode(
                Mesos_V1_TaskStatus.self, from: Array(#"{"task_id":{"value":"t"},"state":"TASK_SOMETHING"}"#.utf8))
        }
    }

    @Test func base64IsStandardPaddedAndStopsAtEquals() throws {
        #expect(try event(#"{"type":"MESSAGE","message":{"data":"aGVs bG8=\n"}}"#).message.data == Data("hello".utf8))
        #expect(
            try event(#"{"type":"MESSAGE","message":{"data":"aGk=garbage-after"}}"#).message.data == Data("hi".utf8))
        #expect(try event(#"{"type":"MESSAGE","message":{"data":"aGk"}}"#).message.data == Data("hi".utf8))
        assertRejected(#"{"type":"MESSAGE","message":{"data":"-_8"}}"#, containing: "invalid base64 character '-'")
    }

    @Test func wrongShapesAreErrors() {
        assertRejected(#"{"type":"KILL","kill":"t"}"#, containing: "kill must be a JSON object")
        assertRejected(#"{"type":"KILL","kill":{"task_id":{"value":7}}}"#, containing: "expected a string")
        assertRejected(#"[1]"#, containing: "document must be a JSON object")
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        assertRejected(#"{"type":"SHUTDOWN","x":\#(deep)}"#, containing: "nesting deeper")
    }

    @Test func escapesAndUnicodeSurviveTheRoundTrip() throws {
        let text = #"{"type":"ERROR","error":{"message":"tab\tquote\" snow\u2603 pair\ud83d\ude00 \/"}}"#
        #expect(try event(text).error.message == "tab\tquote\" snow\u{2603} pair\u{1F600} /")
    }
}
