/// A closure run without a Mesos task, as a framework sends it in a MESSAGE
/// (`sparkmesos.worker.v1.MiniTask`).
public struct MiniTask: Sendable, Hashable {
    /// Chosen by the framework; echoed in the result.
    public var id: String
    public var function: String
    public var payload: [UInt8]
    public var environment: [String: String]

    public init(id: String, function: String, payload: [UInt8] = [], environment: [String: String] = [:]) {
        self.id = id
        self.function = function
        self.payload = payload
        self.environment = environment
    }
}

extension MiniTask {
    /// What is wrong with a closure's `environment`, nil when nothing is: a name that is empty or
    /// holds `=` or a NUL, or a value that holds a NUL, cannot be a variable of a worker's process
    /// (a fine-mode worker's environment is the closure's), so it is refused as a command task's
    /// environment is.
    public static func environmentProblem(_ environment: [String: String]) -> String? {
        guard !environment.isEmpty else { return nil }  // the usual case, on every mini-task's way
        for (name, value) in environment.sorted(by: { $0.key < $1.key }) {
            if name.isEmpty || name.utf8.contains(UInt8(ascii: "=")) || name.utf8.contains(0) {
                return "environment variable name '\(name)' is not valid"
            }
            if value.utf8.contains(0) { return "environment variable \(name) holds a NUL character" }
        }
        return nil
    }
}

/// A framework MESSAGE's batch (`sparkmesos.worker.v1.MiniTaskBatch`): mini-tasks to run, and
/// result files the framework has read, to be removed.
public struct MiniTaskBatch: Sendable, Hashable {
    public var tasks: [MiniTask]
    /// Paths of result files, as the executor sent them (`data_file`, a TASK_FINISHED label `result.data_file`).
    public var release: [String]

    public init(tasks: [MiniTask] = [], release: [String] = []) {
        self.tasks = tasks
        self.release = release
    }
}

/// How a mini-task ended, as the executor tells the framework (`sparkmesos.worker.v1.MiniTaskResult`).
public struct MiniTaskResult: Sendable, Hashable {
    public var id: String
    /// A Spark task state's name: FINISHED, FAILED, KILLED or LOST.
    public var state: String
    public var data: [UInt8]
    public var error: String
    /// Set instead of `data` when the result was stored in a file of the sandbox.
    public var dataFile: String

    public init(id: String, state: String, data: [UInt8] = [], error: String = "", dataFile: String = "") {
        self.id = id
        self.state = state
        self.data = data
        self.error = error
        self.dataFile = dataFile
    }
}

// The protobuf form of a batch and of its results, read and written with the pipe messages' codec:
// a batch's mini-tasks come out with their payloads as byte arrays at once, and results go out
// written in place, with no message objects between (SwiftProtobuf's decode and encode of these
// two messages were 12 % of the executor's time on protobuf batches). The JSON forms are
// SwiftProtobuf's (WorkerProtocol).

extension MiniTaskBatch {
    /// The protobuf encoding of `sparkmesos.worker.v1.MiniTaskBatch`.
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(WireError) -> MiniTaskBatch {
        var batch = MiniTaskBatch()
        var reader = ProtoReader(bytes)
        while let (field, value) = try reader.next() {
            switch field {
            case 1: batch.tasks.append(try MiniTask.decode(try value.data("tasks")))
            case 2: batch.release.append(try value.string("release"))
            default: continue
            }
        }
        return batch
    }
}

extension MiniTask {
    /// One `tasks` entry of a protobuf batch.
    static func decode(_ bytes: ArraySlice<UInt8>) throws(WireError) -> MiniTask {
        var task = MiniTask(id: "", function: "")
        var reader = ProtoReader(bytes)
        while let (field, value) = try reader.next() {
            switch field {
            case 1: task.id = try value.string("tasks.id")
            case 2: task.function = try value.string("tasks.function")
            case 3: task.payload = Array(try value.data("tasks.payload"))
            case 4:
                let (key, item) = try value.mapEntry("tasks.environment")
                task.environment[key] = item
            default: continue
            }
        }
        return task
    }
}

extension MiniTaskResult {
    /// The protobuf encoding of `sparkmesos.worker.v1.MiniTaskResults` holding `results`.
    public static func encodeResults(_ results: [MiniTaskResult]) -> [UInt8] {
        var size = 0
        for result in results { size += ProtoSize.bytes(1, count: result.encodedSize, always: true) }
        var writer = ProtoWriter()
        writer.bytes.reserveCapacity(size)
        for result in results {
            writer.message(1, size: result.encodedSize) {
                $0.string(1, result.id)
                $0.string(2, result.state)
                $0.bytes(3, result.data)
                $0.string(4, result.error)
                $0.string(5, result.dataFile)
            }
        }
        return writer.bytes
    }

    var encodedSize: Int {
        ProtoSize.string(1, id) + ProtoSize.string(2, state) + ProtoSize.bytes(3, count: data.count)
            + ProtoSize.string(4, error) + ProtoSize.string(5, dataFile)
    }
}
