import Foundation
import MesosCodec

/// Reads a job file, checking every key: an unknown key or a bad value is an error naming the
/// file, the key path (`tasks[2].expect`) and what was expected.
public struct JobParser: Sendable {
    /// The file name used in errors.
    let file: String
    /// Directory that relative paths (package, payload files, a worker next to the job file)
    /// are resolved against; absolute, so that a worker path still holds in the executor's sandbox.
    let baseDirectory: String

    init(file: String, baseDirectory: String) {
        self.file = file
        self.baseDirectory = Self.absolute(baseDirectory, in: FileManager.default.currentDirectoryPath)
    }

    /// `directory` made absolute against `workingDirectory` (an empty one is the working directory).
    static func absolute(_ directory: String, in workingDirectory: String) -> String {
        if directory.hasPrefix("/") { return directory }
        if directory.isEmpty || directory == "." { return workingDirectory }
        let trimmed = directory.hasPrefix("./") ? String(directory.dropFirst(2)) : directory
        return workingDirectory.hasSuffix("/") ? workingDirectory + trimmed : workingDirectory + "/" + trimmed
    }

    /// Reads and checks the job file at `path`.
    public static func load(path: String) throws(JobFileError) -> Job {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadableJob(path, "no such file, or not readable")
        }
        let base = (path as NSString).deletingLastPathComponent
        let parser = JobParser(file: path, baseDirectory: base)
        return try parser.parse(JobValue.parse(data, file: path))
    }

    /// Checks an already-read document (`text` is JSON, or YAML when `file` ends in `.yaml`).
    public static func parse(_ text: String, file: String, baseDirectory: String = ".") throws(JobFileError) -> Job {
        let parser = JobParser(file: file, baseDirectory: baseDirectory)
        return try parser.parse(JobValue.parse(Data(text.utf8), file: file))
    }

    func parse(_ root: JobValue) throws(JobFileError) -> Job {
        let top = try object(root, "", allowed: ["name", "executor", "tasks", "steps", "timeout"])
        let name = try top["name"].map { v throws(JobFileError) in try string(v, "name") } ?? file
        let executor = try top["executor"].map { v throws(JobFileError) in try executorSettings(v, "executor") }
        guard let tasksValue = top["tasks"] else { throw fail("tasks", "missing; expected a list of tasks") }
        let tasks = try list(tasksValue, "tasks").enumerated().map { (index, value) throws(JobFileError) in
            try task(value, "tasks[\(index)]")
        }
        var seen: Set<String> = []
        for (index, task) in tasks.enumerated() where !seen.insert(task.id).inserted {
            throw fail("tasks[\(index)].id", "duplicate task id \"\(task.id)\"; expected every id once")
        }
        let steps =
            try top["steps"].map { v throws(JobFileError) in
                try list(v, "steps").enumerated().map { (index, value) throws(JobFileError) in
                    try step(value, "steps[\(index)]")
                }
            } ?? []
        let timeout = try top["timeout"].map { v throws(JobFileError) in try seconds(v, "timeout") } ?? .seconds(120)
        let job = Job(
            name: name, source: file, executor: executor ?? ExecutorSettings(), tasks: tasks, steps: steps,
            timeout: timeout)
        try JobChecks(job: job, parser: self).check()
        return job
    }

    // MARK: Sections

    func executorSettings(_ value: JobValue, _ path: String) throws(JobFileError) -> ExecutorSettings {
        let fields = try object(
            value, path,
            allowed: [
                "mode", "encoding", "checkpoint", "package", "worker", "properties", "shutdown_grace", "resources",
            ])
        var settings = ExecutorSettings()
        if let v = fields["mode"] { settings.mode = try choice(v, "\(path).mode", ExecutorMode.allCases) }
        if let v = fields["encoding"] { settings.encoding = try choice(v, "\(path).encoding", WireEncoding.allCases) }
        if let v = fields["checkpoint"] { settings.checkpoint = try bool(v, "\(path).checkpoint") }
        if let v = fields["package"] {
            let text = try string(v, "\(path).package")
            if text.contains("://") {
                settings.package = .uri(text)
            } else {
                let resolved = text.hasPrefix("/") ? text : baseDirectory + "/" + text
                guard FileManager.default.fileExists(atPath: resolved) else {
                    throw fail(
                        "\(path).package", "\"\(text)\" does not exist; expected a local file or directory, or a URI")
                }
                settings.package = .local(path: resolved)
            }
        }
        if let v = fields["worker"] {
            let text = try string(v, "\(path).worker")
            // "./x" and "../x" name a program next to the job file; anything else is a path
            // inside the package (or absolute), as spark.mesos.executor.worker is.
            if text.hasPrefix("./") || text.hasPrefix("../") {
                let resolved = baseDirectory + "/" + text
                guard FileManager.default.isExecutableFile(atPath: resolved) else {
                    throw fail(
                        "\(path).worker", "\"\(text)\" is not an executable file; expected a worker program")
                }
                settings.worker = resolved
            } else {
                settings.worker = text
            }
        }
        if let v = fields["properties"] { settings.properties = try stringMap(v, "\(path).properties") }
        if let v = fields["shutdown_grace"] { settings.shutdownGracePeriod = try seconds(v, "\(path).shutdown_grace") }
        if let v = fields["resources"] { settings.resources = try resources(v, "\(path).resources") }
        return settings
    }

    func task(_ value: JobValue, _ path: String) throws(JobFileError) -> JobTask {
        let fields = try object(
            value, path,
            allowed: [
                "id", "command", "closure", "expect", "kill_grace", "health_check", "check", "max_completion_time",
                "resources", "limits",
            ])
        guard let idValue = fields["id"] else { throw fail("\(path).id", "missing; expected the task id") }
        let id = try string(idValue, "\(path).id")
        let kind: JobTask.Kind
        switch (fields["command"], fields["closure"]) {
        case (let command?, nil): kind = .command(try self.command(command, "\(path).command"))
        case (nil, let closure?):
            let closureFields = try object(closure, "\(path).closure", allowed: ["function", "payload"])
            guard let function = closureFields["function"] else {
                throw fail("\(path).closure.function", "missing; expected the name of a worker function")
            }
            kind = .closure(
                function: try string(function, "\(path).closure.function"),
                payload: try closureFields["payload"].map { v throws(JobFileError) in
                    try payload(v, "\(path).closure.payload")
                } ?? [])
        case (nil, nil): throw fail(path, "has neither \"command\" nor \"closure\"; expected exactly one")
        case (_?, _?): throw fail(path, "has both \"command\" and \"closure\"; expected exactly one")
        }
        let expect = try fields["expect"].map { v throws(JobFileError) -> TaskEnd in
            try choice(v, "\(path).expect", TaskEnd.allCases)
        }
        let grace = try fields["kill_grace"].map { v throws(JobFileError) in try seconds(v, "\(path).kill_grace") }
        return JobTask(
            id: id, kind: kind, expect: expect ?? .finished, killGracePeriod: grace,
            healthCheck: try fields["health_check"].map { v throws(JobFileError) in
                try healthCheck(v, "\(path).health_check")
            },
            check: try fields["check"].map { v throws(JobFileError) in try check(v, "\(path).check") },
            maxCompletionTime: try fields["max_completion_time"].map { v throws(JobFileError) in
                try positiveSeconds(v, "\(path).max_completion_time")
            },
            resources: try fields["resources"].map { v throws(JobFileError) in try resources(v, "\(path).resources") }
                ?? [:],
            limits: try fields["limits"].map { v throws(JobFileError) in try limits(v, "\(path).limits") } ?? [:])
    }

    /// A task's limits above its resources, as Marathon writes them: `{"cpus": 2, "mem": "unlimited"}`.
    func limits(_ value: JobValue, _ path: String) throws(JobFileError) -> [String: Double] {
        let fields = try object(value, path, allowed: ["cpus", "mem"])
        var result: [String: Double] = [:]
        for (name, item) in fields {
            switch item {
            case .number(let number) where number > 0 && number.isFinite: result[name] = number
            case .string("unlimited"): result[name] = .infinity
            default:
                throw fail("\(path).\(name)", "is \(item.kindDescription); expected a number above 0 or \"unlimited\"")
            }
        }
        return result
    }

    /// Scalar Mesos resources: `{"cpus": 0.5, "mem": 128}` (mem in MB, as Mesos counts it).
    func resources(_ value: JobValue, _ path: String) throws(JobFileError) -> [String: Double] {
        let fields = try object(value, path, allowed: ["cpus", "mem", "disk"])
        var result: [String: Double] = [:]
        for (name, item) in fields {
            guard case .number(let number) = item, number > 0, number.isFinite else {
                throw fail("\(path).\(name)", "is \(item.kindDescription); expected a number above 0")
            }
            result[name] = number
        }
        return result
    }

    func command(_ value: JobValue, _ path: String) throws(JobFileError) -> CommandSpec {
        if case .string(let line) = value {
            guard !line.isEmpty else { throw fail(path, "is empty; expected a shell command line") }
            return CommandSpec(value: line)
        }
        let fields = try object(value, path, allowed: ["value", "shell", "arguments", "environment", "user"])
        guard let commandValue = fields["value"] else { throw fail("\(path).value", "missing; expected the command") }
        var spec = CommandSpec(value: try string(commandValue, "\(path).value"))
        if let v = fields["shell"] { spec.shell = try bool(v, "\(path).shell") }
        if let v = fields["arguments"] {
            spec.arguments = try list(v, "\(path).arguments").enumerated().map { (index, item) throws(JobFileError) in
                try string(item, "\(path).arguments[\(index)]")
            }
        }
        if let v = fields["environment"] { spec.environment = try stringMap(v, "\(path).environment") }
        if let v = fields["user"] {
            let user = try string(v, "\(path).user")
            guard !user.isEmpty, !user.utf8.contains(0) else { throw fail("\(path).user", "expected a user name") }
            spec.user = user
        }
        return spec
    }

    /// A payload: a plain string (its UTF-8), or one of `{"text"}`, `{"base64"}`, `{"file"}`.
    func payload(_ value: JobValue, _ path: String) throws(JobFileError) -> [UInt8] {
        if case .string(let text) = value { return Array(text.utf8) }
        let fields = try object(value, path, allowed: ["text", "base64", "file"])
        guard fields.count == 1, let (key, inner) = fields.first else {
            throw fail(path, "expected exactly one of \"text\", \"base64\", \"file\"")
        }
        let text = try string(inner, "\(path).\(key)")
        switch key {
        case "text": return Array(text.utf8)
        case "base64":
            guard let data = Data(base64Encoded: text) else {
                throw fail(
                    "\(path).base64", "\"\(text.prefix(40))\" is not valid base64; expected padded standard base64")
            }
            return Array(data)
        default:
            let resolved = text.hasPrefix("/") ? text : baseDirectory + "/" + text
            guard let data = FileManager.default.contents(atPath: resolved) else {
                throw fail("\(path).file", "cannot read \"\(resolved)\"; expected a readable file")
            }
            return Array(data)
        }
    }

    // MARK: Typed accessors

    func fail(_ key: String, _ problem: String) -> JobFileError { .invalidJob(file, key: key, problem) }

    func object(_ value: JobValue, _ path: String, allowed: [String]) throws(JobFileError) -> [String: JobValue] {
        guard case .object(let fields) = value else {
            throw fail(path, "is \(value.kindDescription); expected an object")
        }
        for key in fields.keys.sorted() where !allowed.contains(key) {
            let place = path.isEmpty ? key : "\(path).\(key)"
            throw fail(place, "unknown key; expected one of \(allowed.joined(separator: ", "))")
        }
        return fields
    }

    func list(_ value: JobValue, _ path: String) throws(JobFileError) -> [JobValue] {
        guard case .array(let items) = value else { throw fail(path, "is \(value.kindDescription); expected a list") }
        return items
    }

    func string(_ value: JobValue, _ path: String) throws(JobFileError) -> String {
        guard case .string(let text) = value else { throw fail(path, "is \(value.kindDescription); expected a string") }
        return text
    }

    func bool(_ value: JobValue, _ path: String) throws(JobFileError) -> Bool {
        guard case .bool(let flag) = value else {
            throw fail(path, "is \(value.kindDescription); expected true or false")
        }
        return flag
    }

    func seconds(_ value: JobValue, _ path: String) throws(JobFileError) -> Duration {
        guard case .number(let number) = value, number >= 0, number < 86_400 else {
            throw fail(path, "is \(value.kindDescription); expected a number of seconds between 0 and 86400")
        }
        return .milliseconds(Int64((number * 1000).rounded()))
    }

    func stringMap(_ value: JobValue, _ path: String) throws(JobFileError) -> [String: String] {
        guard case .object(let fields) = value else {
            throw fail(path, "is \(value.kindDescription); expected an object of strings")
        }
        var result: [String: String] = [:]
        for (key, item) in fields {
            guard case .string(let text) = item else {
                throw fail(
                    "\(path).\(key)", "is \(item.kindDescription); expected a string (quote numbers and booleans)")
            }
            result[key] = text
        }
        return result
    }

    func choice<Choice: RawRepresentable<String> & CaseIterable>(
        _ value: JobValue, _ path: String, _ choices: Choice.AllCases
    ) throws(JobFileError) -> Choice {
        let names = choices.map(\.rawValue).joined(separator: ", ")
        guard case .string(let text) = value else {
            throw fail(path, "is \(value.kindDescription); expected one of \(names)")
        }
        let normalized = text.lowercased().replacingOccurrences(of: "task_", with: "")
        guard let match = Choice(rawValue: normalized) else {
            throw fail(path, "\"\(text)\" is not valid; expected one of \(names)")
        }
        return match
    }
}
