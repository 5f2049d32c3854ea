import Foundation
import Harness
import XCTest

/// Job files: every example parses, and every mistake names the file, the key and what was expected.
final class JobParserTests: XCTestCase {
    func testEveryExampleParses() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: HarnessTestSupport.examples)
            .filter { $0.hasSuffix(".json") || $0.hasSuffix(".yaml") }.sorted()
        XCTAssertEqual(
            names,
            [
                "agent-restart.json", "closures.json", "coarse.json", "failures-and-kills.json", "fine.yaml",
                "health-checks.json",
            ])
        for name in names where name != "closures.json" {
            XCTAssertNoThrow(try JobParser.load(path: HarnessTestSupport.examples + "/" + name), name)
        }
    }

    func testDefaultStepsLaunchWaitAndShutDown() throws {
        let job = try JobParser.parse(
            #"{"tasks": [{"id": "a", "command": "true"}, {"id": "b", "command": "false", "expect": "TASK_FAILED"}]}"#,
            file: "j.json")
        XCTAssertEqual(job.steps, [.launch(["a", "b"]), .waitForAll, .shutdown])
        XCTAssertEqual(job.tasks.map(\.expect), [.finished, .failed])
        XCTAssertEqual(job.executor.mode, .coarse)
    }

    func testPayloadForms() throws {
        let job = try JobParser.parse(
            """
            {"tasks": [
              {"id": "t", "closure": {"function": "echo", "payload": "plain"}},
              {"id": "b", "closure": {"function": "echo", "payload": {"base64": "aGk="}}},
              {"id": "x", "closure": {"function": "echo", "payload": {"text": "text"}}}
            ]}
            """, file: "j.json")
        XCTAssertEqual(
            job.tasks.map(\.kind),
            [
                .closure(function: "echo", payload: Array("plain".utf8)),
                .closure(function: "echo", payload: Array("hi".utf8)),
                .closure(function: "echo", payload: Array("text".utf8)),
            ])
    }

    func assertError(_ text: String, file name: String = "job.json", _ expected: String, line: UInt = #line) {
        XCTAssertThrowsError(try JobParser.parse(text, file: name), line: line) { error in
            XCTAssertEqual("\(error)", expected, line: line)
            XCTAssertTrue((error as? HarnessError)?.isJobFileProblem ?? false, line: line)
        }
    }

    func testUnknownKeys() {
        assertError(
            #"{"tasks": [], "stepz": []}"#,
            "invalid job file job.json: stepz: unknown key; expected one of name, executor, tasks, steps, timeout")
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "expected": "finished"}]}"#,
            "invalid job file job.json: tasks[0].expected: unknown key; expected one of id, command, closure, expect, kill_grace, health_check, check, max_completion_time, resources"
        )
        assertError(
            #"{"executor": {"coarse": true}, "tasks": []}"#,
            "invalid job file job.json: executor.coarse: unknown key; expected one of mode, encoding, checkpoint, package, worker, properties, shutdown_grace, resources"
        )
    }

    func testBadValues() {
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "expect": "done"}]}"#,
            "invalid job file job.json: tasks[0].expect: \"done\" is not valid; expected one of finished, failed, killed, error, lost"
        )
        assertError(
            #"{"executor": {"mode": "medium"}, "tasks": []}"#,
            "invalid job file job.json: executor.mode: \"medium\" is not valid; expected one of coarse, fine")
        assertError(
            #"{"executor": {"checkpoint": "yes"}, "tasks": []}"#,
            "invalid job file job.json: executor.checkpoint: is the string \"yes\"; expected true or false")
        assertError(
            #"{"executor": {"properties": {"spark.executor.cores": 2}}, "tasks": []}"#,
            "invalid job file job.json: executor.properties.spark.executor.cores: is the number 2; expected a string (quote numbers and booleans)"
        )
        assertError(
            #"{"tasks": [{"id": "a", "closure": {"function": "f", "payload": {"base64": "!!"}}}]}"#,
            "invalid job file job.json: tasks[0].closure.payload.base64: \"!!\" is not valid base64; expected padded standard base64"
        )
        assertError(
            #"{"tasks": [{"id": "a"}]}"#,
            "invalid job file job.json: tasks[0]: has neither \"command\" nor \"closure\"; expected exactly one")
        assertError(
            #"{"timeout": -1, "tasks": []}"#,
            "invalid job file job.json: timeout: is the number -1; expected a number of seconds between 0 and 86400")
    }

    func testStepsMustNameLaunchedTasks() {
        assertError(
            #"{"tasks": [{"id": "a", "command": "true"}], "steps": [{"kill": "a"}, {"launch": "a"}]}"#,
            "invalid job file job.json: steps[0].kill: task \"a\" is not launched by an earlier step")
        assertError(
            #"{"tasks": [{"id": "a", "command": "true"}], "steps": [{"launch": ["a", "b"]}]}"#,
            "invalid job file job.json: steps[0].launch: task \"b\" is not declared under tasks")
        assertError(
            #"{"tasks": [{"id": "a", "command": "true"}, {"id": "b", "command": "true"}], "steps": [{"launch": "a"}]}"#,
            "invalid job file job.json: tasks[1]: task \"b\" is never launched; add it to a launch step")
        assertError(
            #"{"tasks": [{"id": "a", "command": "true"}], "steps": [{"launch": "a", "shutdown": true}]}"#,
            "invalid job file job.json: steps[0]: has launch and shutdown; expected exactly one of launch, launch_group, wait, kill, message, mini_tasks, restart_agent, shutdown"
        )
        assertError(
            #"{"tasks": [{"id": "a", "command": "true"}, {"id": "a", "command": "true"}]}"#,
            "invalid job file job.json: tasks[1].id: duplicate task id \"a\"; expected every id once")
    }

    func testYAMLErrorsNameTheKeyToo() {
        assertError(
            "tasks:\n  - id: a\n    comand: true\n", file: "job.yaml",
            "invalid job file job.yaml: tasks[0].comand: unknown key; expected one of id, command, closure, expect, kill_grace, health_check, check, max_completion_time, resources"
        )
    }

    func testSyntaxErrorsNameTheFile() {
        XCTAssertThrowsError(try JobParser.parse("{\"tasks\": [", file: "broken.json")) { error in
            XCTAssertTrue("\(error)".hasPrefix("cannot read job file broken.json: not valid JSON"), "\(error)")
        }
        XCTAssertThrowsError(try JobParser.load(path: "/nonexistent/job.json")) { error in
            XCTAssertEqual("\(error)", "cannot read job file /nonexistent/job.json: no such file, or not readable")
        }
    }
}
