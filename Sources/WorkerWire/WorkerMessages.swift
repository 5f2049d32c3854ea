/// The worker protocol version this code speaks (`Hello.protocol_version`).
public let workerProtocolVersion: UInt32 = 1

/// The worker's first message: who it is and what it can run.
/// Set by the executor in the environment of a worker it starts to be its fork server (fine mode);
/// the value is the number of the control socket's descriptor.
public let workerForkServerVariable = "SPARK_MESOS_WORKER_FORK_SERVER"

public struct WorkerHello: Sendable, Hashable {
    public var protocolVersion: UInt32
    public var workerName: String
    public var functions: [String]
    /// How many runs the worker executes at once.
    public var concurrency: UInt32
    /// The worker was started as a fork server and is one: it forks fresh workers on request
    /// instead of running closures itself.
    public var forkServer: Bool
    /// With `forkServer`: requests may carry the cgroup files (v1 `tasks`, v2 `cgroup.procs`) a new
    /// worker joins before anything else (see `CForkServer.h`); without it the executor moves each
    /// worker in by pid.
    public var forkServerJoinsCgroups: Bool
    /// With `forkServerJoinsCgroups`: one of a request's cgroup descriptors may be a cgroup2
    /// directory, which the new worker is created in (clone3's CLONE_INTO_CGROUP).
    public var forkServerCreatesInCgroup: Bool

    public init(
        protocolVersion: UInt32 = workerProtocolVersion, workerName: String, functions: [String], concurrency: UInt32,
        forkServer: Bool = false, forkServerJoinsCgroups: Bool = false, forkServerCreatesInCgroup: Bool = false
    ) {
        self.protocolVersion = protocolVersion
        self.workerName = workerName
        self.functions = functions
        self.concurrency = concurrency
        self.forkServer = forkServer
        self.forkServerJoinsCgroups = forkServerJoinsCgroups
        self.forkServerCreatesInCgroup = forkServerCreatesInCgroup
    }
}

/// Run one closure: `function(payload)`.
public struct RunRequest: Sendable, Hashable {
    /// Chosen by the executor, unique per worker.
    public var id: UInt64
    /// The Mesos task id or mini-task id, for logs.
    public var taskID: String
    public var function: String
    public var payload: [UInt8]
    public var environment: [String: String]
    /// A mini-task's run: its result may wait briefly to go out with the results after it (never
    /// set for a Mesos task's closure, whose finished result a later crash must not take with it).
    public var resultMayWait: Bool

    public init(
        id: UInt64, taskID: String, function: String, payload: [UInt8], environment: [String: String] = [:],
        resultMayWait: Bool = false
    ) {
        self.id = id
        self.taskID = taskID
        self.function = function
        self.payload = payload
        self.environment = environment
        self.resultMayWait = resultMayWait
    }
}

/// How a run ended, as the worker saw it.
public struct RunResult: Sendable, Hashable {
    public enum Status: UInt64, Sendable, Hashable {
        case ok = 0
        case error = 1
        case cancelled = 2
        case unknownFunction = 3
    }

    public var id: UInt64
    public var status: Status
    public var data: [UInt8]
    public var error: String

    public init(id: UInt64, status: Status, data: [UInt8] = [], error: String = "") {
        self.id = id
        self.status = status
        self.data = data
        self.error = error
    }
}

/// How far a run got, as its closure reported it.
public struct RunProgress: Sendable, Hashable {
    public var id: UInt64
    /// From 0 to 1.
    public var fraction: Double
    public var message: String

    public init(id: UInt64, fraction: Double, message: String = "") {
        self.id = id
        self.fraction = fraction
        self.message = message
    }
}

// The sizes of the nested messages, field by field as `write(to:)` writes them.

extension RunRequest {
    var encodedSize: Int {
        ProtoSize.uint(1, id) + ProtoSize.string(2, taskID) + ProtoSize.string(3, function)
            + ProtoSize.bytes(4, count: payload.count) + ProtoSize.map(5, environment)
            + ProtoSize.uint(6, resultMayWait ? 1 : 0)
    }
}

extension WorkerHello {
    var encodedSize: Int {
        var size =
            ProtoSize.uint(1, UInt64(protocolVersion)) + ProtoSize.string(2, workerName)
            + ProtoSize.uint(4, UInt64(concurrency)) + ProtoSize.uint(5, forkServer ? 1 : 0)
            + ProtoSize.uint(6, forkServerJoinsCgroups ? 1 : 0) + ProtoSize.uint(7, forkServerCreatesInCgroup ? 1 : 0)
        for function in functions { size += ProtoSize.string(3, function, always: true) }
        return size
    }
}

extension RunResult {
    var encodedSize: Int {
        ProtoSize.uint(1, id) + ProtoSize.uint(2, status.rawValue) + ProtoSize.bytes(3, count: data.count)
            + ProtoSize.string(4, error)
    }
}

extension RunProgress {
    var encodedSize: Int { ProtoSize.uint(1, id) + ProtoSize.double(2, fraction) + ProtoSize.string(3, message) }
}

/// Executor -> worker.
public enum ToWorker: Sendable, Hashable {
    case run(RunRequest)
    case cancel(id: UInt64)
}

/// Worker -> executor.
public enum FromWorker: Sendable, Hashable {
    case hello(WorkerHello)
    case result(RunResult)
    case progress(RunProgress)
}

/// A pipe message written in place: sized first, then written straight into the buffer it goes
/// out in (see ``ProtoWriter``).
protocol InPlaceMessage {
    /// The size of its protobuf encoding.
    var encodedSize: Int { get }
    func write(to writer: inout ProtoWriter)
}

extension InPlaceMessage {
    func encodedInPlace() -> [UInt8] {
        var writer = ProtoWriter()
        writer.bytes.reserveCapacity(encodedSize)
        write(to: &writer)
        return writer.bytes
    }

    var sizeOfFrame: Int { Frame.size(ofFrameHolding: encodedSize) }

    func appendFrameInPlace(to buffer: inout [UInt8]) {
        Frame.appendPrefix(length: encodedSize, to: &buffer)
        var writer = ProtoWriter()
        swap(&writer.bytes, &buffer)
        write(to: &writer)
        swap(&writer.bytes, &buffer)
    }
}

extension ToWorker: InPlaceMessage {
    /// The protobuf encoding of `sparkmesos.worker.v1.ToWorker`.
    public func encoded() -> [UInt8] { encodedInPlace() }

    /// The bytes of its RecordIO frame: the length prefix and ``encoded()``.
    public var frameSize: Int { sizeOfFrame }

    /// Appends its RecordIO frame to `buffer`, written in place (reserve ``frameSize`` first, for
    /// all the frames a buffer gets, and it grows once).
    public func appendFrame(to buffer: inout [UInt8]) { appendFrameInPlace(to: &buffer) }

    var encodedSize: Int {
        switch self {
        case .run(let run): ProtoSize.bytes(1, count: run.encodedSize, always: true)
        case .cancel(let id): ProtoSize.bytes(2, count: ProtoSize.uint(1, id), always: true)
        }
    }

    func write(to writer: inout ProtoWriter) {
        switch self {
        case .run(let run):
            writer.message(1, size: run.encodedSize) {
                $0.uint(1, run.id)
                $0.string(2, run.taskID)
                $0.string(3, run.function)
                $0.bytes(4, run.payload)
                $0.map(5, run.environment)
                $0.uint(6, run.resultMayWait ? 1 : 0)
            }
        case .cancel(let id):
            writer.message(2, size: ProtoSize.uint(1, id)) { $0.uint(1, id) }
        }
    }

    /// Decodes `sparkmesos.worker.v1.ToWorker`.
    public init(decoding bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = ProtoReader(bytes)
        var decoded: ToWorker?
        while let (field, value) = try reader.next() {
            switch field {
            case 1:
                var run = RunRequest(id: 0, taskID: "", function: "", payload: [])
                var inner = ProtoReader(try value.data("run"))
                while let (field, value) = try inner.next() {
                    switch field {
                    case 1: run.id = try value.uint("run.id")
                    case 2: run.taskID = try value.string("run.task_id")
                    case 3: run.function = try value.string("run.function")
                    case 4: run.payload = Array(try value.data("run.payload"))
                    case 5:
                        let (key, item) = try value.mapEntry("run.environment")
                        run.environment[key] = item
                    case 6: run.resultMayWait = try value.uint("run.result_may_wait") != 0
                    default: continue
                    }
                }
                decoded = .run(run)
            case 2:
                var id: UInt64 = 0
                var inner = ProtoReader(try value.data("cancel"))
                while let (field, value) = try inner.next() {
                    if field == 1 { id = try value.uint("cancel.id") }
                }
                decoded = .cancel(id: id)
            default:
                continue
            }
        }
        guard let decoded else { throw .malformed("ToWorker holds neither run nor cancel") }
        self = decoded
    }
}

extension FromWorker: InPlaceMessage {
    /// The protobuf encoding of `sparkmesos.worker.v1.FromWorker`.
    public func encoded() -> [UInt8] { encodedInPlace() }

    /// The bytes of its RecordIO frame: the length prefix and ``encoded()``.
    public var frameSize: Int { sizeOfFrame }

    /// Appends its RecordIO frame to `buffer`, written in place (reserve ``frameSize`` first, and
    /// it grows once).
    public func appendFrame(to buffer: inout [UInt8]) { appendFrameInPlace(to: &buffer) }

    var encodedSize: Int {
        switch self {
        case .hello(let hello): ProtoSize.bytes(1, count: hello.encodedSize, always: true)
        case .result(let result): ProtoSize.bytes(2, count: result.encodedSize, always: true)
        case .progress(let progress): ProtoSize.bytes(3, count: progress.encodedSize, always: true)
        }
    }

    func write(to writer: inout ProtoWriter) {
        switch self {
        case .hello(let hello):
            writer.message(1, size: hello.encodedSize) {
                $0.uint(1, UInt64(hello.protocolVersion))
                $0.string(2, hello.workerName)
                for function in hello.functions { $0.string(3, function, always: true) }
                $0.uint(4, UInt64(hello.concurrency))
                $0.uint(5, hello.forkServer ? 1 : 0)
                $0.uint(6, hello.forkServerJoinsCgroups ? 1 : 0)
                $0.uint(7, hello.forkServerCreatesInCgroup ? 1 : 0)
            }
        case .result(let result):
            writer.message(2, size: result.encodedSize) {
                $0.uint(1, result.id)
                $0.uint(2, result.status.rawValue)
                $0.bytes(3, result.data)
                $0.string(4, result.error)
            }
        case .progress(let progress):
            writer.message(3, size: progress.encodedSize) {
                $0.uint(1, progress.id)
                $0.double(2, progress.fraction)
                $0.string(3, progress.message)
            }
        }
    }

    /// Decodes `sparkmesos.worker.v1.FromWorker`.
    public init(decoding bytes: ArraySlice<UInt8>) throws(WireError) {
        var reader = ProtoReader(bytes)
        var decoded: FromWorker?
        while let (field, value) = try reader.next() {
            switch field {
            case 1:
                var hello = WorkerHello(protocolVersion: 0, workerName: "", functions: [], concurrency: 0)
                var inner = ProtoReader(try value.data("hello"))
                while let (field, value) = try inner.next() {
                    switch field {
                    case 1: hello.protocolVersion = UInt32(truncatingIfNeeded: try value.uint("hello.protocol_version"))
                    case 2: hello.workerName = try value.string("hello.worker_name")
                    case 3: hello.functions.append(try value.string("hello.functions"))
                    case 4: hello.concurrency = UInt32(truncatingIfNeeded: try value.uint("hello.concurrency"))
                    case 5: hello.forkServer = try value.uint("hello.fork_server") != 0
                    case 6:
                        hello.forkServerJoinsCgroups = try value.uint("hello.fork_server_joins_cgroups") != 0
                    case 7:
                        hello.forkServerCreatesInCgroup =
                            try value.uint("hello.fork_server_creates_in_cgroup") != 0
                    default: continue
                    }
                }
                decoded = .hello(hello)
            case 2:
                var result = RunResult(id: 0, status: .ok)
                var inner = ProtoReader(try value.data("result"))
                while let (field, value) = try inner.next() {
                    switch field {
                    case 1: result.id = try value.uint("result.id")
                    case 2:
                        let raw = try value.uint("result.status")
                        guard let status = RunResult.Status(rawValue: raw) else {
                            throw .malformed("result.status \(raw) is not a known status")
                        }
                        result.status = status
                    case 3: result.data = Array(try value.data("result.data"))
                    case 4: result.error = try value.string("result.error")
                    default: continue
                    }
                }
                decoded = .result(result)
            case 3:
                var progress = RunProgress(id: 0, fraction: 0)
                var inner = ProtoReader(try value.data("progress"))
                while let (field, value) = try inner.next() {
                    switch field {
                    case 1: progress.id = try value.uint("progress.id")
                    case 2: progress.fraction = try value.double("progress.fraction")
                    case 3: progress.message = try value.string("progress.message")
                    default: continue
                    }
                }
                guard progress.fraction >= 0, progress.fraction <= 1 else {
                    throw .malformed("progress.fraction \(progress.fraction) is not within 0…1")
                }
                decoded = .progress(progress)
            default:
                continue
            }
        }
        guard let decoded else { throw .malformed("FromWorker holds neither hello, result nor progress") }
        self = decoded
    }
}
