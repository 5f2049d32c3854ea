extension JobParser {
    static let stepVerbs = [
        "launch", "launch_group", "wait", "kill", "message", "mini_tasks", "pause", "restart_agent", "shutdown",
    ]

    func step(_ value: JobValue, _ path: String) throws(JobFileError) -> JobStep {
        guard case .object(let fields) = value else {
            throw fail(
                path,
                "is \(value.kindDescription); expected an object with one of \(Self.stepVerbs.joined(separator: ", "))")
        }
        let verbs = fields.keys.filter { Self.stepVerbs.contains($0) }.sorted()
        guard verbs.count == 1, let verb = verbs.first, let argument = fields[verb] else {
            let found = verbs.isEmpty ? "none" : verbs.joined(separator: " and ")
            throw fail(path, "has \(found); expected exactly one of \(Self.stepVerbs.joined(separator: ", "))")
        }
        _ = try object(value, path, allowed: verb == "kill" ? ["kill", "grace"] : [verb])
        let here = "\(path).\(verb)"
        switch verb {
        case "launch":
            return .launch(try ids(argument, here))
        case "launch_group":
            return .launchGroup(try ids(argument, here))
        case "wait":
            if case .string("all") = argument { return .waitForAll }
            guard case .object(let targets) = argument, !targets.isEmpty else {
                throw fail(here, "is \(argument.kindDescription); expected \"all\" or an object of task id to state")
            }
            var result: [String: WaitTarget] = [:]
            for (task, target) in targets {
                result[task] = try choice(target, "\(here).\(task)", WaitTarget.allCases)
            }
            return .wait(result)
        case "kill":
            let grace = try fields["grace"].map { v throws(JobFileError) in try seconds(v, "\(path).grace") }
            return .kill(try string(argument, here), grace: grace)
        case "message":
            return .message(try payload(argument, here))
        case "pause":
            return .pause(try seconds(argument, here))
        case "mini_tasks":
            return .miniTasks(
                try list(argument, here).enumerated().map { (index, item) throws(JobFileError) in
                    try miniTask(item, "\(here)[\(index)]")
                })
        case "restart_agent":
            if case .bool(true) = argument { return .restartAgent(.now) }
            guard case .string = argument else {
                throw fail(here, "is \(argument.kindDescription); expected true, \"now\" or \"at_next_message\"")
            }
            return .restartAgent(try choice(argument, here, AgentRestart.allCases))
        default:
            guard case .bool(true) = argument else {
                throw fail(here, "is \(argument.kindDescription); expected true")
            }
            return .shutdown
        }
    }

    func ids(_ value: JobValue, _ path: String) throws(JobFileError) -> [String] {
        if case .string(let id) = value { return [id] }
        let items = try list(value, path)
        guard !items.isEmpty else { throw fail(path, "is empty; expected at least one task id") }
        return try items.enumerated().map { (index, item) throws(JobFileError) in try string(item, "\(path)[\(index)]")
        }
    }

    func miniTask(_ value: JobValue, _ path: String) throws(JobFileError) -> MiniTaskSpec {
        let fields = try object(value, path, allowed: ["id", "function", "payload", "expect"])
        guard let id = fields["id"] else { throw fail("\(path).id", "missing; expected the mini-task id") }
        guard let function = fields["function"] else {
            throw fail("\(path).function", "missing; expected the name of a worker function")
        }
        return MiniTaskSpec(
            id: try string(id, "\(path).id"),
            function: try string(function, "\(path).function"),
            payload: try fields["payload"].map { v throws(JobFileError) in try payload(v, "\(path).payload") } ?? [],
            expect: try fields["expect"].map { v throws(JobFileError) -> TaskEnd in
                try choice(v, "\(path).expect", TaskEnd.allCases)
            } ?? .finished)
    }
}

/// Checks that go across sections: steps name declared tasks, each task is launched once,
/// waits and kills come after the launch.
struct JobChecks {
    let job: Job
    let parser: JobParser

    func check() throws(JobFileError) {
        let declared = Set(job.tasks.map(\.id))
        var launched: Set<String> = []
        var miniTaskIDs: Set<String> = []
        var paused = Duration.zero
        for (index, step) in job.steps.enumerated() {
            let path = "steps[\(index)]"
            switch step {
            case .launch(let ids), .launchGroup(let ids):
                let key = if case .launch = step { "launch" } else { "launch_group" }
                for id in ids {
                    guard declared.contains(id) else {
                        throw parser.fail("\(path).\(key)", "task \"\(id)\" is not declared under tasks")
                    }
                    guard launched.insert(id).inserted else {
                        throw parser.fail("\(path).\(key)", "task \"\(id)\" is launched twice; expected once")
                    }
                }
            case .wait(let targets):
                for id in targets.keys.sorted() where !launched.contains(id) {
                    throw parser.fail("\(path).wait.\(id)", "task \"\(id)\" is not launched by an earlier step")
                }
            case .kill(let id, _):
                guard launched.contains(id) else {
                    throw parser.fail("\(path).kill", "task \"\(id)\" is not launched by an earlier step")
                }
            case .miniTasks(let batch):
                for (item, task) in batch.enumerated() where !miniTaskIDs.insert(task.id).inserted {
                    throw parser.fail("\(path).mini_tasks[\(item)].id", "duplicate mini-task id \"\(task.id)\"")
                }
            case .pause(let length):
                paused += length
                guard paused < job.timeout else {
                    throw parser.fail(
                        "\(path).pause",
                        "pauses add up to \(paused), not less than the job's timeout of \(job.timeout)")
                }
            case .waitForAll, .message, .restartAgent, .shutdown:
                break
            }
        }
        for (index, task) in job.tasks.enumerated() where !launched.contains(task.id) {
            throw parser.fail("tasks[\(index)]", "task \"\(task.id)\" is never launched; add it to a launch step")
        }
    }
}
