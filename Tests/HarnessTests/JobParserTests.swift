import TemporaryDirectory
import HarnessJobs
import Foundation
import Harness
import Testing

/// Job files: every example parses, and every mistake names the file, the key and what was expected.
struct JobParserTests {
    @Test func everyExampleParses() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: HarnessTestSupport.examples)
            .filter { $0.hasSuffix(".json") || $0.hasSuffix(".yaml") }.sorted()
        #expect(
            names == [
                "agent-restart.json", "closures.json", "coarse.json", "failures-and-kills.json", "fine.yaml",
                "health-checks.json",
            ])
        for name in names where name != "closures.json" {
            #expect(throws: Never.self, "\(name)") {
                try JobParser.load(path: HarnessTestSupport.examples + "/" + name)
            }
        }
    }

    @Test func defaultStepsLaunchWaitAndShutDown() throws {
        let job = try JobParser.parse(
            #"{"tasks": [{"id": "a", "command": "true"}, {"id": "b", "command": "false", "expect": "TASK_FAILED"}]}"#,
            file: "j.json")
        #expect(job.steps == [.launch(["a", "b"]), .waitForAll, .shutdown])
        #expect(job.tasks.map(\.expect) == [.finished, .failed])
        #expect(job.executor.mode == .coarse)
    }

    @Test func payloadForms() throws {
        let job = try JobParser.parse(
            """
            {"tasks": [
              {"id": "t", "closure": {"function": "echo", "payload": "plain"}},
              {"id": "b", "closure": {"function": "echo", "payload": {"base64": "aGk="}}},
              {"id": "x", "closure": {"function": "echo", "payload": {"text": "text"}}}
            ]}
            """, file: "j.json")
        #expect(
            job.tasks.map(\.kind) == [
                .closure(function: "echo", payload: Array("plain".utf8)),
                .closure(function: "echo", payload: Array("hi".utf8)),
                .closure(function: "echo", payload: Array("text".utf8)),
            ])
    }

    func assertError(
        _ text: String, file name: String = "job.json", _ expected: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        if let error = #expect(
            throws: (any Error).self, sourceLocation: sourceLocation,
            performing: { try JobParser.parse(text, file: name) })
        {
            #expect("\(error)" == expected, sourceLocation: sourceLocation)
            #expect(error is JobFileError, sourceLocation: sourceLocation)
        }
    }

    @Test func unknownKeys() {
        assertError(
            #"{"tasks": [], "stepz": []}"#,
            "invalid job file job.json: stepz: unknown key; expected one of name, executor, tasks, steps, timeout")
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "expected": "finished"}]}"#,
            "invalid job file job.json: tasks[0].expected: unknown key; expected one of id, command, closure, expect, kill_grace, health_check, check, max_completion_time, resources, limits"
        )
        assertError(
            #"{"executor": {"coarse": true}, "tasks": []}"#,
            "invalid job file job.json: executor.coarse: unknown key; expected one of mode, encoding, checkpoint, package, worker, properties, shutdown_grace, resources"
        )
    }

    @Test func badValues() {
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
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "limits": {"mem": "lots"}}]}"#,
            "invalid job file job.json: tasks[0].limits.mem: is the string \"lots\"; expected a number above 0 or \"unlimited\""
        )
        assertError(
            #"{"tasks": [{"id": "a", "command": "true", "limits": {"disk": 10}}]}"#,
            "invalid job file job.json: tasks[0].limits.disk: unknown key; expected one of cpus, mem")
    }

    /// A task's limits, as Marathon writes them, become `TaskInfo.limits`.
    @Test func taskLimitsAreNumbersOrUnlimited() throws {
        let job = try JobParser.parse(
            #"{"tasks": [{"id": "a", "command": "true", "resources": {"mem": 64}, "limits": {"mem": 256, "cpus": "unlimited"}}]}"#,
            file: "j.json")
        #expect(job.tasks.first?.limits == ["mem": 256, "cpus": .infinity])
    }

    /// A command's `user` becomes `CommandInfo.user`; it must be a name.
    @Test func aCommandCanNameItsUser() throws {
        let job = try JobParser.parse(
            #"{"tasks": [{"id": "a", "command": {"value": "id -un", "user": "nobody"}}]}"#, file: "j.json")
        #expect(job.tasks.first?.kind == .command(CommandSpec(value: "id -un", user: "nobody")))
        assertError(
            #"{"tasks": [{"id": "a", "command": {"value": "true", "user": ""}}]}"#,
            "invalid job file job.json: tasks[0].command.user: expected a user name")
        assertError(
            #"{"tasks": [{"id": "a", "command": {"value": "true", "user": 0}}]}"#,
            "invalid job file job.json: tasks[0].command.user: is the number 0; expected a string")
    }

    @Test func pauseTakesSecondsThatFitTheTimeout() throws {
        let job = try JobParser.parse(
            #"{"tasks": [{"id": "a", "command": "true"}], "steps": [{"launch": "a"}, {"pause": 2.5}, {"shutdown": true}]}"#,
            file: "j.json")
        #expect(job.steps == [.launch(["a"]), .pause(.milliseconds(2500)), .shutdown])
        assertError(
            #"{"tasks": [], "steps": [{"pause": "long"}]}"#,
            "invalid job file job.json: steps[0].pause: is the string \"long\"; expected a number of seconds between 0 and 86400"
        )
        assertError(
            #"{"timeout": 5, "tasks": [], "steps": [{"pause": 3}, {"pause": 2}]}"#,
            "invalid job file job.json: steps[1].pause: pauses add up to 5.0 seconds, not less than the job's timeout of 5.0 seconds"
        )
    }

    /// An agent restart now (`true`, `"now"`), or as the executor's next MESSAGE arrives.
    @Test func restartAgentIsNowOrAtTheNextMessage() throws {
        let job = try JobParser.parse(
            #"{"tasks": [], "steps": [{"restart_agent": true}, {"restart_agent": "now"}, {"restart_agent": "at_next_message"}]}"#,
            file: "j.json")
        #expect(job.steps == [.restartAgent(.now), .restartAgent(.now), .restartAgent(.atNextMessage)])
        assertError(
            #"{"tasks": [], "steps": [{"restart_agent": "later"}]}"#,
            "invalid job file job.json: steps[0].restart_agent: \"later\" is not valid; expected one of now, at_next_message"
        )
        assertError(
            #"{"tasks": [], "steps": [{"restart_agent": false}]}"#,
            "invalid job file job.json: steps[0].restart_agent: is the boolean false; expected true, \"now\" or \"at_next_message\""
        )
    }

    @Test func stepsMustNameLaunchedTasks() {
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
            "invalid job file job.json: steps[0]: has launch and shutdown; expected exactly one of launch, launch_group, wait, kill, message, mini_tasks, pause, restart_agent, shutdown"
        )
        assertError(
            #"{"tasks": [{"id": "a", "command": "true"}, {"id": "a", "command": "true"}]}"#,
            "invalid job file job.json: tasks[1].id: duplicate task id \"a\"; expected every id once")
    }

    @Test func yamlErrorsNameTheKeyToo() {
        assertError(
            "tasks:\n  - id: a\n    comand: true\n", file: "job.yaml",
            "invalid job file job.yaml: tasks[0].comand: unknown key; expected one of id, command, closure, expect, kill_grace, health_check, check, max_completion_time, resources, limits"
        )
    }

    @Test func syntaxErrorsNameTheFile() {
        if let error = #expect(
            throws: (any Error).self, performing: { try JobParser.parse("{\"tasks\": [", file: "broken.json") })
        {
            #expect("\(error)".hasPrefix("cannot read job file broken.json: not valid JSON"), "\(error)")
        }
        if let error = #expect(
            throws: (any Error).self, performing: { try JobParser.load(path: "/nonexistent/job.json") })
        {
            #expect("\(error)" == "cannot read job file /nonexistent/job.json: no such file, or not readable")
        }
    }

    /// A worker next to the job file (`./demo-worker`) is named to the executor by an absolute
    /// path, however the job file was named: the executor runs in its own sandbox, where a
    /// relative path would name nothing (`harness job.json` gave it `././demo-worker`).
    @Test func aWorkerNextToAJobFileNamedRelativelyIsGivenByItsAbsolutePath() throws {
        try withTemporaryDirectory(prefix: "sme-job-") { directory in
            let worker = directory + "/demo-worker"
            #expect(FileManager.default.createFile(atPath: worker, contents: Data("#!/bin/sh\n".utf8)))
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: worker)
            let job = directory + "/job.json"
            #expect(
                FileManager.default.createFile(
                    atPath: job,
                    contents: Data(
                        #"{"executor": {"worker": "./demo-worker"}, "tasks": [{"id": "a", "command": "true"}]}"#.utf8)))
            // The job file's path relative to the working directory, whatever that is.
            let workingDirectory = FileManager.default.currentDirectoryPath
            let up = workingDirectory.split(separator: "/").map { _ in ".." }.joined(separator: "/")
            let relative = up + job
            #expect(!relative.hasPrefix("/"))
            let parsed = try JobParser.load(path: relative)
            let named = try #require(parsed.executor.worker)
            #expect(named.hasPrefix("/"), "\(named)")
            #expect(FileManager.default.isExecutableFile(atPath: named))
            #expect((named as NSString).standardizingPath == worker)
        }
    }
}
