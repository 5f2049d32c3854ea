// Executor benchmarks: the real executor binary driven by the local agent over loopback.
// Prints one table: every figure next to a floor of this machine measured in the same run (its
// speed drifts up to 2× within an hour), at the start and again right before the figure's scenario,
// the better of the two, and its ratio to it; asserts nothing.
//
//   SME_BENCHMARKS=1 swift build $(cat Packaging/release-flags)   (the packaged executor's build)
//   .build-release/release/executor-benchmark [--only SCENARIO] [--tasks N] … (--help lists them)
import Foundation
import LocalAgent
import MesosProto

#if canImport(Glibc)
    import Glibc
#endif

let options = BenchmarkOptions.parseOrExit()
let taskCount = options.count("--tasks")
/// `--only NAME` runs one scenario (see `BenchmarkOptions.scenarios`; `fine-cgroups` is fine mode
/// paired with and without cgroups). The floors are measured every time.
let only = options.only
func selected(_ name: String) -> Bool { only == nil || only == name }
let miniCount = options.count("--minis")
let miniPayloadBytes = options.count("--mini-payload")
let workerRuns = options.count("--worker-runs")
/// The executors log at `error` unless told otherwise, so that the figures leave logging out.
let executorLogLevel = options.logLevel
let latencyTaskCount = options.count("--latency-tasks")
let logMiB = options.count("--log-mib")
let waves = options.count("--waves")
let startCount = options.count("--starts")
let compareExecutor = options.compareExecutor
let binDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
let executor = binDirectory + "/spark-mesos-executor"
let worker = binDirectory + "/demo-worker"
let hello = binDirectory + "/benchmark-hello"

func rssKiB(_ pid: Int32, _ field: String, file: String = "status") -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/\(file)", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        return Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty }.map(String.init) ?? "") ?? 0
    }
    return 0
}

func mb(_ kib: Int) -> String { String(format: "%.1f MB", Double(kib) / 1024) }

/// A process's RSS once it has settled: read every 200 ms until it has not moved by more than
/// 64 KiB for a second, and no sooner than 3 s (an executor gives memory back 2 s after its
/// last work), at most 15 s. Returns the last reading and the seconds waited.
func rssOnceSettled(_ pid: Int32) async throws -> (kib: Int, seconds: Double) {
    let start = wallClock()
    var readings: [Int] = []
    while true {
        try await Task.sleep(for: .milliseconds(200))
        readings.append(rssKiB(pid, "VmRSS"))
        let elapsed = wallClock() - start
        let lastSecond = readings.suffix(5)
        if elapsed >= 15 || (elapsed >= 3 && lastSecond.count == 5 && lastSecond.max()! - lastSecond.min()! <= 64) {
            return (readings.last!, elapsed)
        }
    }
}

/// CPU seconds (user + system) of a process, from /proc; `children` adds its reaped children's.
func cpuSeconds(_ pid: Int32, children: Bool = true) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return 0 }
    let fields = text[text.index(after: close)...].split(separator: " ")
    var ticks = (Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)
    if children { ticks += (Double(fields[13]) ?? 0) + (Double(fields[14]) ?? 0) }
    return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
}

/// CPU seconds of the live children of `pid` (long-lived workers, not yet reaped).
func liveChildrenCPUSeconds(_ pid: Int32) -> Double {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.reduce(0) { total, tid in
        let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/children", encoding: .utf8)) ?? ""
        return total + children.split(separator: " ").compactMap { Int32($0) }.reduce(0) { $0 + cpuSeconds($1) }
    }
}

/// Runs `body` with a local agent and the executor process subscribed to it. `beforeStart` runs
/// once the agent listens, before the executor is started; `body` gets the executor's pid and the
/// wall-clock time just before its exec.
func withExecutor(
    properties: [String: String], cacheDirectory: String? = nil, environment extra: [String: String] = [:],
    program: String = executor, isolation: isolated (any Actor)? = #isolation,
    beforeStart: (LocalAgent) async throws -> Void = { _ in },
    _ body: (LocalAgent, Int32, Double) async throws -> Void
) async throws {
    let sandbox = NSTemporaryDirectory() + "sme-bench-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: sandbox, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: sandbox) }
    var configuration = LocalAgentConfiguration()
    configuration.useUniqueFrameworkID()
    configuration.sandboxDirectory = sandbox
    configuration.executorInfo.data = try JSONSerialization.data(withJSONObject: properties)
    try await withLocalAgent(configuration) { agent in
        var environment = await agent.environment()
        environment["SPARK_MESOS_EXECUTOR_CACHE_DIR"] = cacheDirectory ?? sandbox + "/.cache"
        // The executor's settings in the benchmark's own environment are passed through (to compare
        // the executor with and without its idle reclaim, its cgroups, …); a scenario's own win.
        for (name, value) in ProcessInfo.processInfo.environment where name.hasPrefix("SPARK_MESOS_EXECUTOR_") {
            environment[name] = value
        }
        for (name, value) in extra { environment[name] = value }
        try await beforeStart(agent)
        let started = wallClock()
        let pid = try spawn([program, "--log-level", executorLogLevel], environment: environment, directory: sandbox)
        try await agent.waitUntil("subscribed", timeout: .seconds(30)) { $0.executorStatus == .subscribed }
        try await body(agent, pid, started)
        await agent.shutdown()
        await reapLater(pid)
    }
}

func closureTask(_ agent: LocalAgent, _ id: String, _ function: String, _ payload: String) -> Mesos_V1_TaskInfo {
    let base64 = Data(payload.utf8).base64EncodedString()
    return agent.makeTask(id, data: Array(#"{"function":"\#(function)","payload":"\#(base64)"}"#.utf8))
}

/// A command task running the floors' trivial program, so that command tasks/s compares with
/// spawn+reap/s of the same program (a dynamically linked /bin/true costs ~1.25× a static one).
func commandTask(_ agent: LocalAgent, _ id: String, program: String) -> Mesos_V1_TaskInfo {
    var task = agent.makeTask(id)
    task.command.shell = false
    task.command.value = program
    return task
}

/// A figure's floor: its text, and the value the figure is divided by.
struct Floor {
    var text: String
    var value: Double?
    var target: String

    static let none = Floor(text: "", value: nil, target: "")
}

/// LAUNCH→TASK_RUNNING one task at a time (unloaded latency), then `count` tasks at once (throughput).
func launchScenario(
    _ name: String, properties: [String: String], environment: [String: String] = [:], count: Int,
    latencyFloor: Floor, throughputFloor: Floor,
    make: @escaping @Sendable (LocalAgent, String) -> Mesos_V1_TaskInfo
) async throws {
    try await withExecutor(properties: properties, environment: environment) { agent, pid, _ in
        var latencies: [Double] = []
        for index in 0..<latencyTaskCount {
            let id = "\(name)-lat-\(index)"
            let start = wallClock()
            try await agent.launch(make(agent, id))
            let state = try await agent.waitUntil { $0.taskStates[id] == .taskFinished }
            // From the end: the task's updates are the last ones (`updates(forTask:)` scans them all,
            // which made a long run's benchmark quadratic in its tasks).
            if let running = state.updates.last(where: {
                $0.status.taskID.value == id && $0.status.state == .taskRunning
            }) {
                latencies.append(running.status.timestamp - start)
            }
        }
        let before = await agent.state.updates.count
        let executorCPU = cpuSeconds(pid)
        let executorOwnCPU = cpuSeconds(pid, children: false)
        let ownCPU = cpuSeconds(getpid())
        let start = wallClock()
        let ids = (0..<count).map { "\(name)-\($0)" }
        // In waves: the tasks of a wave are launched at once; the next wave waits for them.
        let waveSize = (count + waves - 1) / waves
        var state = await agent.state
        for wave in stride(from: 0, to: count, by: waveSize) {
            for id in ids[wave..<min(count, wave + waveSize)] { try await agent.launch(make(agent, id)) }
            // STARTING, RUNNING, FINISHED per task; an O(1) check keeps the agent's own cost flat.
            let expected = before + 3 * min(count, wave + waveSize)
            state = try await agent.waitUntil("\(count) tasks", timeout: .seconds(300)) { state in
                state.updates.count >= expected
            }
        }
        let unfinished = ids.filter { state.taskStates[$0] != .taskFinished }
        let elapsed = wallClock() - start
        let p50 = percentile(latencies, 0.5)
        let rate = Double(count) / elapsed
        row(
            "\(name): LAUNCH→TASK_RUNNING p50 (p99), one task at a time",
            "\(ms(p50)) (\(ms(percentile(latencies, 0.99))))", floor: latencyFloor.text,
            ratio: latencyFloor.value.map { p50 / $0 }, target: latencyFloor.target)
        row(
            "\(name): \(count) tasks at once" + (unfinished.isEmpty ? "" : " (\(unfinished.count) did not finish)"),
            "\(perSecond(rate)) (\(String(format: "%.2f", elapsed)) s)", floor: throughputFloor.text,
            ratio: throughputFloor.value.map { rate / $0 }, target: throughputFloor.target)
        row(
            "\(name): CPU per task, executor + its workers (executor alone); local agent",
            "\(ms((cpuSeconds(pid) - executorCPU) / Double(count))) (\(ms((cpuSeconds(pid, children: false) - executorOwnCPU) / Double(count)))); \(ms((cpuSeconds(getpid()) - ownCPU) / Double(count)))"
        )
        row(
            "\(name): executor RSS after the tasks (anonymous, file); peak",
            "\(mb(rssKiB(pid, "VmRSS"))) (\(mb(rssKiB(pid, "RssAnon"))), \(mb(rssKiB(pid, "RssFile")))); \(mb(rssKiB(pid, "VmHWM")))"
        )
        // What stays once the executor gave back what it does not use (2 s after the last task).
        try await Task.sleep(for: .seconds(3))
        row(
            "\(name): idle again, executor RSS (anonymous)",
            "\(mb(rssKiB(pid, "VmRSS"))) (\(mb(rssKiB(pid, "RssAnon"))))")
    }
}

/// Mini-task results seen so far; used from the agent's predicate calls, one at a time.
final class ResultTally: @unchecked Sendable {
    private var next: Int
    private let encoding: MiniTaskEncoding
    private(set) var results = 0

    init(from index: Int, encoding: MiniTaskEncoding) {
        next = index
        self.encoding = encoding
    }

    /// The benchmark shares the machine with the executor: counting must cost it little (a string
    /// search through Foundation, `components(separatedBy:)`, took about a quarter of it).
    func count(_ messages: [Data]) -> Int {
        while next < messages.count {
            let found =
                switch encoding {
                case .json: Self.occurrences(of: Self.idKey, in: messages[next])
                case .protobuf: Self.topLevelRecords(in: messages[next])
                }
            results += found
            next += 1
        }
        return results
    }

    private static let idKey = Array("\"id\"".utf8)

    /// JSON: each result carries one `"id"`; memchr to each candidate first byte, then compare.
    private static func occurrences(of needle: [UInt8], in data: Data) -> Int {
        data.withUnsafeBytes { haystack in
            needle.withUnsafeBytes { needle in
                guard var cursor = haystack.baseAddress, let key = needle.baseAddress else { return 0 }
                let end = cursor + haystack.count
                var found = 0
                while end - cursor >= needle.count,
                    let hit = memchr(cursor, Int32(needle[0]), end - cursor - needle.count + 1)
                {
                    let candidate = UnsafeRawPointer(hit)
                    if memcmp(candidate, key, needle.count) == 0 {
                        found += 1
                        cursor = candidate + needle.count
                    } else {
                        cursor = candidate + 1
                    }
                }
                return found
            }
        }
    }

    /// Protobuf: `MiniTaskResults` is a run of `results` fields (tag 0x0A, a varint length, the
    /// result); counts them by their lengths, without decoding a result.
    private static func topLevelRecords(in data: Data) -> Int {
        data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
            var index = 0
            var found = 0
            while index < bytes.count, bytes[index] == 0x0A {
                index += 1
                var length = 0
                var shift = 0
                while index < bytes.count {
                    let byte = bytes[index]
                    index += 1
                    length |= Int(byte & 0x7F) << shift
                    shift += 7
                    if byte < 0x80 { break }
                }
                index += length
                found += 1
            }
            return found
        }
    }
}

/// How the benchmark writes a mini-task batch; results come back in the same encoding.
enum MiniTaskEncoding: String, CaseIterable {
    case protobuf
    case json

    /// A `MiniTaskBatch` of `ids`, each running `echo` on `payload`.
    func batch(_ ids: [String], payload: [UInt8]) -> Data {
        switch self {
        case .json:
            let base64 = Data(payload).base64EncodedString()
            let tasks = ids.map { #"{"id":"\#($0)","function":"echo","payload":"\#(base64)"}"# }
            return Data(#"{"tasks":[\#(tasks.joined(separator: ","))]}"#.utf8)
        case .protobuf:
            // MiniTaskBatch { repeated MiniTask tasks = 1 }; MiniTask { id = 1; function = 2; payload = 3 }.
            var out: [UInt8] = []
            for id in ids {
                out += protobufField(
                    1,
                    protobufField(1, Array(id.utf8)) + protobufField(2, Array("echo".utf8)) + protobufField(3, payload))
            }
            return Data(out)
        }
    }
}

extension Mesos_V1_TaskState {
    var isDone: Bool { self == .taskFinished || self == .taskFailed || self == .taskKilled || self == .taskError }
}

// The floors first, measured in this run: every figure is divided by one of them.
let scratch = NSTemporaryDirectory() + "sme-floors-" + UUID().uuidString
try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
var floors = try Floors.measure(work: scratch, hello: hello)
let trivialProgramPath = floors.trivialProgramPath
let cgroupMoveSeconds = floors.cgroupMoveSeconds
// Kept until the end: the command tasks run the floors' trivial program from it.
defer { try? FileManager.default.removeItem(atPath: scratch) }
printHeader()
floors.printRows()

// Start-up: exec → SUBSCRIBE on the wire, and exec → TASK_RUNNING of a task the agent queued for
// the executor's SUBSCRIBE (no package), over `startCount` fresh executors.
if selected("startup") {
    /// Exec → SUBSCRIBE and exec → TASK_RUNNING of one fresh executor.
    func start(_ program: String, _ id: String) async throws -> (subscribe: Double, running: Double) {
        var result = (subscribe: Double.nan, running: Double.nan)
        try await withExecutor(
            properties: [:], program: program,
            beforeStart: { try await $0.launch(commandTask($0, id, program: trivialProgramPath)) }
        ) { agent, _, started in
            let state = try await agent.waitUntil("the first task", timeout: .seconds(30)) {
                $0.taskStates[id] == .taskFinished
            }
            if let subscribe = state.requests(.subscribe).first {
                result.subscribe = subscribe.received.timeIntervalSince1970 - started
            }
            if let running = state.updates(forTask: id).first(where: { $0.status.state == .taskRunning }) {
                result.running = running.status.timestamp - started
            }
        }
        return result
    }
    floors = try floors.refined([.hello])
    let near = floors
    var ours: [(subscribe: Double, running: Double)] = []
    var theirs: [(subscribe: Double, running: Double)] = []
    for index in 0..<startCount {
        ours.append(try await start(executor, "first-\(index)"))
        if let compareExecutor { theirs.append(try await start(compareExecutor, "other-\(index)")) }
    }
    let helloFloor = "hello \(ms(near.helloSeconds))"
    for (name, figure, target) in [
        ("exec → SUBSCRIBE request at the agent", \(subscribe: Double, running: Double).subscribe, "≤ 2×"),
        ("exec → first TASK_RUNNING, task queued at SUBSCRIBED", \.running, "≤ 3×"),
    ] {
        for (label, runs) in [("", ours), (" [\(compareExecutor ?? "")]", theirs)] where !runs.isEmpty {
            let values = runs.map { $0[keyPath: figure] }
            let median = percentile(values, 0.5)
            row(
                "startup\(label): \(name), median of \(values.count) (min–max)",
                "\(ms(median)) (\(ms(values.min() ?? .nan))–\(ms(values.max() ?? .nan)))", floor: helloFloor,
                ratio: median / near.helloSeconds, target: target)
        }
        if !theirs.isEmpty {
            let pairs = zip(ours, theirs).map { $0[keyPath: figure] / $1[keyPath: figure] }
            row(
                "startup: \(name), this binary / the compared one, pair by pair (min–max)",
                String(
                    format: "%.2f× (%.2f–%.2f)", percentile(pairs, 0.5), pairs.min() ?? .nan, pairs.max() ?? .nan))
        }
    }
}

// Idle memory, with the code-page reclaim (the default) and without it.
if selected("idle") {
    for reclaim in ["1", "0"] {
        try await withExecutor(properties: [:], environment: ["SPARK_MESOS_EXECUTOR_IDLE_RECLAIM": reclaim]) {
            agent, pid, _ in
            try await Task.sleep(for: .seconds(3))
            row(
                "idle: executor RSS (anonymous; PSS), reclaim \(reclaim == "1" ? "on" : "off")",
                "\(mb(rssKiB(pid, "VmRSS"))) (\(mb(rssKiB(pid, "RssAnon"))); \(mb(rssKiB(pid, "Pss", file: "smaps_rollup"))))",
                floor: "Swift static-stdlib idle 3.9 MB, +Foundation 8.6 MB (limits.md)",
                target: reclaim == "1" ? "≤ 15 MB" : "≤ 10 MB")
            guard reclaim == "1" else { return }
            // The first task after idling pays for bringing the executor's code back (minor faults).
            let start = wallClock()
            try await agent.launch(commandTask(agent, "after-idle", program: trivialProgramPath))
            let state = try await agent.waitUntil { $0.taskStates["after-idle"] == .taskFinished }
            if let running = state.updates(forTask: "after-idle").first(where: { $0.status.state == .taskRunning }) {
                row(
                    "idle: first command task after idling, LAUNCH→TASK_RUNNING", ms(running.status.timestamp - start),
                    floor: "warm: see command p50; a first cgroup move \(cgroupMoveSeconds.map(ms) ?? "n/a")")
            }
            // A burst of 500 tasks, then idle again.
            for index in 0..<500 {
                try await agent.launch(commandTask(agent, "burst-\(index)", program: trivialProgramPath))
            }
            _ = try await agent.waitUntil("the burst", timeout: .seconds(120)) { state in
                (0..<500).allSatisfy { state.taskStates["burst-\($0)"] == .taskFinished }
            }
            // The executor gives memory back 2 s after the burst (SPARK_MESOS_EXECUTOR_IDLE_RECLAIM).
            try await Task.sleep(for: .seconds(3))
            row(
                "idle: after a burst of 500 command tasks, RSS (anonymous); peak",
                "\(mb(rssKiB(pid, "VmRSS"))) (\(mb(rssKiB(pid, "RssAnon")))); \(mb(rssKiB(pid, "VmHWM")))")
        }
    }
}

// Several idle executors at once, without the reclaim: their code pages are shared, so each one's
// proportional share (PSS) is what an agent running many of them pays.
if selected("idle") {
    let count = 4
    func nested(_ pids: [Int32], isolation: isolated (any Actor)? = #isolation) async throws {
        guard pids.count < count else {
            try await Task.sleep(for: .seconds(3))
            let pss = pids.map { rssKiB($0, "Pss", file: "smaps_rollup") }
            let rss = pids.map { rssKiB($0, "VmRSS") }
            row(
                "idle: \(count) executors at once, reclaim off: PSS each, median (RSS)",
                "\(mb(pss.sorted()[count / 2])) (\(mb(rss.sorted()[count / 2])))",
                floor: "Swift static-stdlib idle PSS 2.4 MB (limits.md)", target: "≤ 10 MB")
            return
        }
        try await withExecutor(properties: [:], environment: ["SPARK_MESOS_EXECUTOR_IDLE_RECLAIM": "0"]) { _, pid, _ in
            try await nested(pids + [pid])
        }
    }
    try await nested([])
}

let workerProperties = [
    "spark.mesos.coarse": "false", "spark.mesos.executor.worker": worker, "spark.executor.cores": "2",
]
// The first fine-mode task after an idle spell: the executor has given its code pages back and the
// fork server (started by the warm-up task's package-less start) has been idle as long.
if selected("idle") {
    try await withExecutor(properties: workerProperties) { agent, _, _ in
        try await agent.launch(closureTask(agent, "warm-up", "echo", "x"))
        _ = try await agent.waitUntil { $0.taskStates["warm-up"] == .taskFinished }
        try await Task.sleep(for: .seconds(3))
        let start = wallClock()
        try await agent.launch(closureTask(agent, "after-idle", "echo", "x"))
        let state = try await agent.waitUntil { $0.taskStates["after-idle"] == .taskFinished }
        if let running = state.updates(forTask: "after-idle").first(where: { $0.status.state == .taskRunning }) {
            row(
                "idle: first fine task after idling (forked worker), LAUNCH→TASK_RUNNING",
                ms(running.status.timestamp - start), floor: "warm: see fine p50")
        }
    }
}
if selected("command") {
    floors = try floors.refined([.spawn, .post])
    let near = floors
    try await launchScenario(
        "command", properties: [:], count: taskCount,
        latencyFloor: Floor(
            text: "spawn+reap \(ms(near.spawnSeconds))" + (near.postText.map { " + " + $0 } ?? ""),
            value: near.spawnSeconds + (near.postSeconds ?? 0), target: ""),
        throughputFloor: Floor(text: near.spawnText, value: near.spawnsPerSecond, target: "≥ 0.75×"),
        make: { commandTask($0, $1, program: trivialProgramPath) })
}
if selected("fine") {
    floors = try floors.refined([.spawn])
    let near = floors
    try await launchScenario(
        "fine", properties: workerProperties, count: taskCount,
        latencyFloor: Floor(text: "", value: nil, target: "p50 ≤ 3 ms"),
        throughputFloor: Floor(text: near.spawnText, value: near.spawnsPerSecond, target: "≥ 0.5×"),
        make: { closureTask($0, $1, "echo", "x") })
}
if selected("fine-cgroups") {
    // Paired: the same fine-mode scenario with a cgroup per task (limits from the task's cpus and
    // mem) and with cgroups turned off, alternating, so drift hits both alike.
    for round in 1...2 {
        for cgroups in [true, false] {
            floors = try floors.refined([.spawn])
            let near = floors
            try await launchScenario(
                "fine-cgroups-\(cgroups ? "on" : "off")-\(round)", properties: workerProperties,
                environment: ["SPARK_MESOS_EXECUTOR_CGROUPS": cgroups ? "auto" : "off"], count: taskCount,
                latencyFloor: Floor(text: "", value: nil, target: "p50 ≤ 3 ms"),
                throughputFloor: Floor(
                    text: near.spawnText, value: near.spawnsPerSecond, target: "≥ 500/s with cgroups"),
                make: { agent, id in
                    var task = closureTask(agent, id, "echo", "x")
                    for (name, value) in [("cpus", 0.5), ("mem", 128.0)] {
                        var resource = Mesos_V1_Resource()
                        resource.name = name
                        resource.type = .scalar
                        resource.scalar.value = value
                        task.resources.append(resource)
                    }
                    return task
                })
        }
    }
}
if selected("fine-spawned") {
    // The same without the fork server: a posix_spawn of the worker program per task.
    var properties = workerProperties
    properties["spark.mesos.executor.worker.forkServer"] = "false"
    floors = try floors.refined([.spawn, .hello])
    let near = floors
    try await launchScenario(
        "fine-spawned", properties: properties, count: taskCount,
        latencyFloor: Floor(text: "hello \(ms(near.helloSeconds))", value: near.helloSeconds, target: ""),
        throughputFloor: Floor(text: near.spawnText, value: near.spawnsPerSecond, target: ""),
        make: { closureTask($0, $1, "echo", "x") })
}
if selected("coarse") {
    var properties = workerProperties
    properties["spark.mesos.coarse"] = "true"
    floors = try floors.refined([.pipe, .post])
    let near = floors
    let floor = near.pipeRoundTripSeconds.flatMap { pipe in near.postSeconds.map { pipe + $0 } }
    try await launchScenario(
        "coarse", properties: properties, count: taskCount,
        latencyFloor: Floor(
            text: floor.map { "pipe round trip + POST \(ms($0))" } ?? "n/a (no cc)", value: floor,
            target: "≤ 1.5×"),
        throughputFloor: Floor(text: near.postText.map { "sequential " + $0 } ?? "", value: nil, target: ""),
        make: { closureTask($0, $1, "echo", "x") })
}

// Mini-tasks through MESSAGE batches, in both encodings: protobuf (what the Python client sends
// unless told otherwise) and JSON.
if selected("minis") {
    for encoding in MiniTaskEncoding.allCases {
        floors = try floors.refined([.pipelined])
        let near = floors
        try await withExecutor(
            properties: [
                "spark.mesos.coarse": "true", "spark.mesos.executor.worker": worker, "spark.executor.cores": "2",
            ]
        ) { agent, pid, _ in
            // Warm the pool first.
            await agent.sendMessage(encoding.batch(["warm"], payload: []))
            _ = try await agent.waitUntil { !$0.messages.isEmpty }
            let before = await agent.state.messages.count
            let batchSize = 500
            // In waves: a wave's batches are sent at once; the next wave waits for their results.
            // The batches are encoded before the clock starts: a scheduler encodes them on its own
            // machine, and here their encoding would take the CPU the executor is measured on.
            // "abc…": the demo worker's echo returns it, so results are as large.
            let payload = (0..<miniPayloadBytes).map { UInt8(ascii: "a") + UInt8($0 % 26) }
            let waveSize = (miniCount + waves - 1) / waves
            let waveBatches = stride(from: 0, to: miniCount, by: waveSize).map { wave in
                let end = min(miniCount, wave + waveSize)
                let batches = stride(from: wave, to: end, by: batchSize).map { batch in
                    encoding.batch((batch..<min(batch + batchSize, end)).map { "m\($0)" }, payload: payload)
                }
                return (end: end, batches: batches)
            }
            let cpuBefore = (cpuSeconds(pid, children: false), liveChildrenCPUSeconds(pid), cpuSeconds(getpid()))
            let start = wallClock()
            // Counts the results in the messages after the warm-up, looking at each message once:
            // the predicate runs on every change of the agent's state.
            let tally = ResultTally(from: before, encoding: encoding)
            for (end, batches) in waveBatches {
                for batch in batches { await agent.sendMessage(batch) }
                _ = try await agent.waitUntil("mini-task results", timeout: .seconds(600)) { state in
                    tally.count(state.messages) >= end
                }
            }
            let elapsed = wallClock() - start
            let messages = await agent.state.messages.count - before
            let rate = Double(tally.results) / elapsed
            let name = "mini-tasks, \(encoding.rawValue)"
            row(
                "\(name): \(tally.results) in batches of \(batchSize), \(miniPayloadBytes)-byte payloads (\(messages) result messages)",
                "\(perSecond(rate)) (\(String(format: "%.2f", elapsed)) s)",
                floor: near.pipelinedPerSecond.map { "pipelined pipe \(perSecond($0))" } ?? "n/a (no cc)",
                ratio: near.pipelinedPerSecond.map { rate / $0 }, target: "≥ 0.4×")
            let perMini = { (seconds: Double) in String(format: "%.1f µs", seconds * 1e6 / Double(tally.results)) }
            row(
                "\(name): CPU per mini-task: executor; its workers; local agent",
                [
                    cpuSeconds(pid, children: false) - cpuBefore.0, liveChildrenCPUSeconds(pid) - cpuBefore.1,
                    cpuSeconds(getpid()) - cpuBefore.2,
                ].map(perMini).joined(separator: "; "))
            row("\(name): executor RSS now; peak", "\(mb(rssKiB(pid, "VmRSS"))); \(mb(rssKiB(pid, "VmHWM")))")
            let (idleKiB, after) = try await rssOnceSettled(pid)
            row(
                "\(name): executor RSS once idle again after the burst",
                "\(mb(idleKiB)) (\(String(format: "%.1f", after)) s after the last result)")
        }
    }
}

/// Figures collected inside an executor scope.
final class Timings: @unchecked Sendable { var values: [Double] = [] }

// A Swift worker alone: the demo worker driven through its pipes by the benchmark, no executor
// between: what a run of a closure costs a worker written with the SDK, apart from the executor.
if selected("worker") {
    floors = try floors.refined([.pipelined])
    let near = floors
    let runs = workerRuns
    var frames: [UInt8] = []
    for index in 0..<runs {
        // ToWorker { run = 1 { id = 1; task_id = 2; function = 3; payload = 4 } }, RecordIO-framed.
        let run =
            [0x08] + protobufVarint(index + 1) + protobufField(2, Array("m\(index)".utf8))
            + protobufField(3, Array("echo".utf8)) + protobufField(4, Array("x".utf8))
        let message = protobufField(1, run)
        frames += Array("\(message.count)\n".utf8) + message
    }
    var toWorker: [Int32] = [0, 0]
    var fromWorker: [Int32] = [0, 0]
    guard pipe(&toWorker) == 0, pipe(&fromWorker) == 0 else {
        throw BenchmarkError("pipe: \(String(cString: strerror(errno)))")
    }
    // The child gets its ends as 3 and 4 only (a dup2 of a close-on-exec descriptor is not).
    for descriptor in toWorker + fromWorker { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
    let start = wallClock()
    let pid = try spawn([worker], descriptors: [(toWorker[0], 3), (fromWorker[1], 4)])
    close(toWorker[0])
    close(fromWorker[1])
    // Everything at once from another thread (the pipe holds the worker back); the results are
    // read here. The input is closed only once every result is in: a worker cancels the runs it
    // has not started when its input ends.
    let input = toWorker[1]
    let allFrames = frames
    let writer = Thread {
        allFrames.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(input, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { break }
                offset += written
            }
        }
    }
    writer.start()
    var tally = WorkerResultTally()
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while tally.results < runs {
        let got = read(fromWorker[0], &buffer, buffer.count)
        if got < 0 && errno == EINTR { continue }
        guard got > 0 else { break }
        tally.feed(buffer[..<got])
    }
    close(input)
    while read(fromWorker[0], &buffer, buffer.count) > 0 {}
    close(fromWorker[0])
    var status: Int32 = 0
    var usage = rusage()
    while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
    guard tally.results == runs, tally.failed == 0, status == 0 else {
        throw BenchmarkError(
            "the demo worker answered \(tally.results) of \(runs) runs, \(tally.failed) not OK, exit status \(status)")
    }
    let elapsed = wallClock() - start
    let cpu = { (time: timeval) in Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    let perRun = { (seconds: Double) in String(format: "%.2f µs", seconds * 1e6 / Double(runs)) }
    let rate = Double(runs) / elapsed
    row(
        "Swift worker alone: \(runs) echo runs through its pipes",
        "\(perSecond(rate)) (\(String(format: "%.2f", elapsed)) s)",
        floor: near.pipelinedPerSecond.map { "pipelined pipe \(perSecond($0))" } ?? "n/a (no cc)",
        ratio: near.pipelinedPerSecond.map { rate / $0 })
    row(
        "Swift worker alone: its CPU per run (user; system)",
        "\(perRun(cpu(usage.ru_utime) + cpu(usage.ru_stime))) (\(perRun(cpu(usage.ru_utime))); \(perRun(cpu(usage.ru_stime))))"
    )
}

// Package fetch: a Spark-sized package served by the agent over loopback, against `curl | tar xz`
// and a hard-link tree of the same package.
if selected("fetch") {
    let work = NSTemporaryDirectory() + "sme-fetch-bench-" + UUID().uuidString
    let tree = work + "/spark-bench-1.0-bin"
    try FileManager.default.createDirectory(atPath: tree + "/jars", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: tree + "/python", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: work) }
    // ~300 MB in ~1,200 files: 250 "jars" of mixed compressible/random bytes, 950 small text files.
    try shell(
        """
        cd \(tree) && for i in $(seq 1 250); do head -c 600000 /dev/urandom > jars/lib-$i.jar; \
        yes "org.apache.spark.sql.catalyst.expressions.codegen.GeneratedClass$i" | head -c 600000 >> jars/lib-$i.jar; done && \
        for i in $(seq 1 950); do yes "def f$i(x): return x * $i" | head -c 4000 > python/mod_$i.py; done
        """)
    let tarball = work + "/spark-bench-1.0-bin.tgz"
    try shell("cd \(work) && tar czf \(tarball) spark-bench-1.0-bin")
    let size = (try FileManager.default.attributesOfItem(atPath: tarball)[.size] as? Int) ?? 0
    let files = try FileManager.default.subpathsOfDirectory(atPath: tree).count
    let sha256 = try shell("sha256sum \(tarball)").output.prefix(64)
    // A one-file package: a hit of it shows what a hit costs beside the package's size.
    try shell(
        "mkdir -p \(work)/tiny-1.0 && echo tiny > \(work)/tiny-1.0/RELEASE && cd \(work) && tar czf tiny-1.0.tgz tiny-1.0"
    )
    var configuration = LocalAgentConfiguration()
    configuration.sandboxDirectory = work
    try await withLocalAgent(configuration) { server in
        let url = await server.publish(file: tarball, as: "spark-bench-1.0-bin.tgz")
        let tinyURL = await server.publish(file: work + "/tiny-1.0.tgz", as: "tiny-1.0.tgz")
        let cache = work + "/cache"
        for round in 1...3 {
            try? FileManager.default.removeItem(atPath: cache)
            let curlDirectory = work + "/curl-\(round)"
            try FileManager.default.createDirectory(atPath: curlDirectory, withIntermediateDirectories: true)
            let curl = try shell("curl -s '\(url)' | tar xz -C \(curlDirectory)").seconds
            let links = try shell("cp -al \(curlDirectory)/spark-bench-1.0-bin \(work)/links-\(round)").seconds
            try? FileManager.default.removeItem(atPath: curlDirectory)
            try? FileManager.default.removeItem(atPath: work + "/links-\(round)")
            let timings = Timings()
            let cpu = Timings()
            // Each a new executor process: cold, a hit (symlink), a hit with hard links; the tiny
            // package cold, then its hit.
            let runs: [(uri: String, link: String)] = [
                (url + "#sha256=" + sha256, "symlink"), (url, "symlink"), (url, "hardlinks"),
                (tinyURL, "symlink"), (tinyURL, "symlink"),
            ]
            for run in runs {
                try await withExecutor(
                    properties: ["spark.executor.uri": run.uri, "spark.mesos.executor.cache.link": run.link],
                    cacheDirectory: cache
                ) { agent, pid, _ in
                    let subscribed = wallClock()
                    let cpuBefore = cpuSeconds(pid, children: false)
                    var task = agent.makeTask("t")
                    task.command.value = "true"
                    try await agent.launch(task)
                    let state = try await agent.waitUntil("running", timeout: .seconds(120)) {
                        $0.taskStates["t"] == .taskRunning || $0.taskStates["t"] == .taskFinished
                            || $0.taskStates["t"] == .taskFailed
                    }
                    let running = state.updates(forTask: "t").first { $0.status.state == .taskRunning }
                    timings.values.append((running?.status.timestamp ?? .nan) - subscribed)
                    cpu.values.append(cpuSeconds(pid, children: false) - cpuBefore)
                }
            }
            let package = "\(size / 1_000_000) MB .tgz, \(files) entries"
            row(
                "fetch \(round): executor cold fetch + verify (sha256) + extract, \(package) (the executor's CPU)",
                String(format: "%.2f s (%.2f s)", timings.values[0], cpu.values[0]),
                floor: String(format: "curl | tar xz %.2f s", curl),
                ratio: timings.values[0] / curl, target: "≤ 0.15×")
            row(
                "fetch \(round): cache hit, new executor process (SUBSCRIBED → TASK_RUNNING)", ms(timings.values[1]),
                floor: "cp -al of the tree \(ms(links))", ratio: timings.values[1] / links, target: "≤ 0.3×")
            row(
                "fetch \(round): the same hit with `cache.link=hardlinks`; a hit of a one-file package",
                "\(ms(timings.values[2])); \(ms(timings.values[4]))", floor: "cp -al of the tree \(ms(links))",
                ratio: timings.values[2] / links)
        }
    }
}

// Bounded logs: the executor's CPU per MiB a task writes to stdout (drained from a pipe into
// rotated files), next to `cat` moving the same bytes from a pipe into one file.
if selected("logs") {
    let line = "a log line of a task that writes without end, as services and batch jobs do, and more"
    let writer = "yes '\(line)' | head -c \(logMiB << 20)"
    let work = NSTemporaryDirectory() + "sme-logs-bench-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: work) }
    for round in 1...3 {
        // The floor: cat's own CPU (the subshell's children, from `times`), and the wall time.
        let (floorWall, times) = try shell("\(writer) | (cat > \(work)/cat-out; times)")
        try? FileManager.default.removeItem(atPath: work + "/cat-out")
        // "0m0.01s 0m0.02s" for the shell, then its children's (cat's) user and system time.
        let seconds =
            times.split(separator: "\n").last.map {
                $0.split(separator: " ").map { field -> Double in
                    let parts = field.dropLast().split(separator: "m")
                    return (Double(parts.first ?? "0") ?? 0) * 60 + (Double(parts.last ?? "0") ?? 0)
                }.reduce(0, +)
            } ?? .nan
        try await withExecutor(properties: [:]) { agent, pid, _ in
            let before = cpuSeconds(pid, children: false)
            var task = agent.makeTask("logs-\(round)")
            task.command.value = writer
            let start = wallClock()
            try await agent.launch(task)
            _ = try await agent.waitUntil("the writer", timeout: .seconds(600)) {
                $0.taskStates["logs-\(round)"]?.isDone == true
            }
            let wall = wallClock() - start
            let cpu = cpuSeconds(pid, children: false) - before
            let perMiB = cpu * 1000 / Double(logMiB)
            let floorPerMiB = seconds * 1000 / Double(logMiB)
            row(
                "logs \(round): executor CPU per MiB a task writes to stdout (\(logMiB) MiB in \(String(format: "%.2f", wall)) s)",
                String(format: "%.3f ms/MiB", perMiB),
                floor: String(format: "cat pipe→file %.3f ms/MiB, %.2f s wall", floorPerMiB, floorWall),
                ratio: perMiB / floorPerMiB)
        }
    }
}

// The machine's compute speed once more: a slow spell that began during the run shows here.
MachineSpeed.printRow(MachineSpeed.measure(work: scratch), when: "at the end")

/// A length-delimited protobuf field (wire type 2).
func protobufField(_ number: UInt8, _ bytes: [UInt8]) -> [UInt8] {
    [number << 3 | 2] + protobufVarint(bytes.count) + bytes
}

func protobufVarint(_ value: Int) -> [UInt8] {
    var value = UInt64(value)
    var out: [UInt8] = []
    while value >= 0x80 {
        out.append(UInt8(value & 0x7F) | 0x80)
        value >>= 7
    }
    return out + [UInt8(value)]
}

/// Counts the results in what a worker writes (RecordIO frames of `FromWorker`), and those whose
/// status is not OK, without decoding more than that.
struct WorkerResultTally {
    private var pending: [UInt8] = []
    private(set) var results = 0
    private(set) var failed = 0

    mutating func feed(_ bytes: ArraySlice<UInt8>) {
        pending += bytes
        var index = 0
        while let newline = pending[index...].firstIndex(of: UInt8(ascii: "\n")) {
            let length = pending[index..<newline].reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            guard newline + 1 + length <= pending.count else { break }
            let message = pending[(newline + 1)..<(newline + 1 + length)]
            // FromWorker.result = 2; inside it a Result's status = 2 (a varint), left out when OK.
            if message.first == 0x12 {
                results += 1
                if Self.status(ofResultIn: message) != 0 { failed += 1 }
            }
            index = newline + 1 + length
        }
        pending.removeFirst(index)
    }

    /// The status field of the Result that `message` (a FromWorker) holds; nil if unreadable.
    private static func status(ofResultIn message: ArraySlice<UInt8>) -> UInt64? {
        var index = message.startIndex
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while index < message.endIndex, shift < 64 {
                let byte = message[index]
                index += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }
        // The outer field's tag and length: the rest is the Result.
        guard varint() == 0x12, varint() != nil else { return nil }
        var status: UInt64 = 0
        while index < message.endIndex {
            guard let key = varint() else { return nil }
            switch key & 7 {
            case 0:
                guard let value = varint() else { return nil }
                if key >> 3 == 2 { status = value }
            case 2:
                guard let length = varint() else { return nil }
                index += Int(length)
            default: return nil
            }
        }
        return status
    }
}
