import Foundation
import MesosCodec
import MesosProto
import XCTest

/// The places where stout's JSON differs from the proto3 mapping (stout's `protobuf.hpp`).
final class MesosJSONRulesTests: XCTestCase {
    private func event(_ text: String) throws -> Mesos_V1_Executor_Event {
        try WireEncoding.json.decode(Mesos_V1_Executor_Event.self, from: Array(text.utf8))
    }

    private func assertRejected(_ text: String, containing fragment: String, line: UInt = #line) {
        XCTAssertThrowsError(try event(text), line: line) { error in
            XCTAssertTrue(error is CodecError, line: line)
            XCTAssertTrue("\(error)".contains(fragment), "\(error)", line: line)
        }
    }

    func testBooleansMayBeStrings() throws {
        let text = #"""
            {"type":"SUBSCRIBED","subscribed":{"executor_info":{"executor_id":{"value":"e"}},
             "framework_info":{"user":"u","name":"n","checkpoint":"true"},"agent_info":{"hostname":"h"}}}
            """#
        XCTAssertTrue(try event(text).subscribed.frameworkInfo.checkpoint)
        assertRejected(text.replacingOccurrences(of: #""true""#, with: #""yes""#), containing: "expected a boolean")
    }

    func testObjectForARepeatedFieldIsOneElement() throws {
        let text = #"""
            {"type":"LAUNCH_GROUP","launch_group":{"task_group":{"tasks":
              {"name":"a","task_id":{"value":"g1"},"agent_id":{"value":"a1"}}}}}
            """#
        XCTAssertEqual(try event(text).launchGroup.taskGroup.tasks.map(\.taskID.value), ["g1"])
    }

    func testNullMeansAbsent() throws {
        let text = #"{"type":"KILL","kill":{"task_id":{"value":"t"},"kill_policy":null}}"#
        XCTAssertFalse(try event(text).kill.hasKillPolicy)
        assertRejected(#"{"type":"KILL","kill":{"task_id":null}}"#, containing: "required")
    }

    func testEnumsMustBeNames() throws {
        assertRejected(#"{"type":5,"message":{"data":""}}"#, containing: "enum must be given by name")
        // An unknown name in an optional enum is dropped, as stout does.
        XCTAssertEqual(try event(#"{"type":"FUTURE_EVENT"}"#).type, .unknown)
        XCTAssertThrowsError(
            try WireEncoding.json.decode(
                Mesos_V1_TaskStatus.self, from: Array(#"{"task_id":{"value":"t"},"state":"TASK_SOMETHING"}"#.utf8)))
    }

    func testBase64IsStandardPaddedAndStopsAtEquals() throws {
        XCTAssertEqual(
            try event(#"{"type":"MESSAGE","message":{"data":"aGVs bG8=\n"}}"#).message.data, Data("hello".utf8))
        XCTAssertEqual(
            try event(#"{"type":"MESSAGE","message":{"data":"aGk=garbage-after"}}"#).message.data, Data("hi".utf8))
        XCTAssertEqual(try event(#"{"type":"MESSAGE","message":{"data":"aGk"}}"#).message.data, Data("hi".utf8))
        assertRejected(#"{"type":"MESSAGE","message":{"data":"-_8"}}"#, containing: "invalid base64 character '-'")
    }

    func testWrongShapesAreErrors() {
        assertRejected(#"{"type":"KILL","kill":"t"}"#, containing: "kill must be a JSON object")
        assertRejected(#"{"type":"KILL","kill":{"task_id":{"value":7}}}"#, containing: "expected a string")
        assertRejected(#"[1]"#, containing: "document must be a JSON object")
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        assertRejected(#"{"type":"SHUTDOWN","x":\#(deep)}"#, containing: "nesting deeper")
    }

    func testEscapesAndUnicodeSurviveTheRoundTrip() throws {
        let text = #"{"type":"ERROR","error":{"message":"tab\tquote\" snow\u2603 pair\ud83d\ude00 \/"}}"#
        XCTAssertEqual(try event(text).error.message, "tab\tquote\" snow\u{2603} pair\u{1F600} /")
    }
}
