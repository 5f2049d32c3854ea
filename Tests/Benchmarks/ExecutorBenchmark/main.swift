// Executor benchmarks: the real executor binary driven by the local agent over loopback.
// Prints figures next to the floors measured on this machine (shared/limits.md); asserts nothing.
//
//   SME_BENCHMARKS=1 swift build -c release --static-swift-stdlib
//   .build/release/executor-benchmark [--tasks 1000] [--minis 20000] [--waves 1] [--only NAME]
import Foundation
import LocalAgent
import MesosProto

#if canImport(Glibc)
    import Glibc
#endif

let arguments = CommandLine.arguments
func option(_ name: String, _ fallback: Int) -> Int {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let value = Int(arguments[index + 1])
    else { return fallback }
    return value
}
let taskCount = option("--tasks", 1000)
/// `--only NAME` runs one scenario: idle, command, fine, fine-cgroups (paired with and without
/// cgroups), fine-spawned, coarse, minis, logs or fetch.
let only: String? = arguments.firstIndex(of: "--only").flatMap { $0 + 1 < arguments.count ? arguments[$0 + 1] : nil }
func selected(_ name: String) -> Bool { only == nil || only == name }
let miniCount = option("--minis", 20000)
/// `--log-mib N`: how much the `logs` scenario's task writes to its stdout.
let logMiB = option("--log-mib", 1024)
/// `--waves N` launches the tasks of a scenario in N waves, each after the previous one finished.
let waves = max(1, option("--waves", 1))
let binDirectory = URL(fileURLWithPath: arguments[0]).deletingLastPathComponent().path
let executor = binDirectory + "/spark-mesos-executor"
let worker = binDirectory + "/demo-worker"

func wallClock() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}

func rssKiB(_ pid: Int32, _ field: String) -> Int {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        return Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty }.map(String.init) ?? "") ?? 0
    }
    return 0
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

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
}

func ms(_ seconds: Double) -> String { String(format: "%.2f ms", seconds * 1000) }

/// Runs `body` with a local agent and the executor process subscribed to it.
func withExecutor(
    properties: [String: String], cacheDirectory: String? = nil, environment extra: [String: String] = [:],
    isolation: isolated (any Actor)? = #isolation,
    _ body: (LocalAgent, Int32) async throws -> Void
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
        // Passed through, to compare the executor with and without its idle reclaim.
        environment["SPARK_MESOS_EXECUTOR_IDLE_RECLAIM"] =
            ProcessInfo.processInfo.environment[
                "SPARK_MESOS_EXECUTOR_IDLE_RECLAIM"]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executor)
        process.arguments = ["--log-level", "error"]
        for (name, value) in extra { environment[name] = value }
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: sandbox)
        try process.run()
        try await agent.waitUntil("subscribed", timeout: .seconds(30)) { $0.executorStatus == .subscribed }
        try await body(agent, process.processIdentifier)
        await agent.shutdown()
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
    }
}

func closureTask(_ agent: LocalAgent, _ id: String, _ function: String, _ payload: String) -> Mesos_V1_TaskInfo {
    let base64 = Data(payload.utf8).base64EncodedString()
    return agent.makeTask(id, data: Array(#"{"function":"\#(function)","payload":"\#(base64)"}"#.utf8))
}

func commandTask(_ agent: LocalAgent, _ id: String) -> Mesos_V1_TaskInfo {
    var task = agent.makeTask(id)
    task.command.shell = false
    task.command.value = "/bin/true"
    return task
}

/// LAUNCH→TASK_RUNNING one task at a time (unloaded latency), then `count` tasks at once (throughput).
func launchScenario(
    _ name: String, properties: [String: String], environment: [String: String] = [:], count: Int,
    floorLatency: String, floorThroughput: String,
    make: @escaping @Sendable (LocalAgent, String) -> Mesos_V1_TaskInfo
) async throws {
    try await withExecutor(properties: properties, environment: environment) { agent, pid in
        var latencies: [Double] = []
        for index in 0..<100 {
            let id = "\(name)-lat-\(index)"
            let start = wallClock()
            try await agent.launch(make(agent, id))
            let state = try await agent.waitUntil { $0.taskStates[id] == .taskFinished }
            if let running = state.updates(forTask: id).first(where: { $0.status.state == .taskRunning }) {
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
        if !unfinished.isEmpty { print("\(name): \(unfinished.count) tasks did not finish: \(unfinished.prefix(3))") }
        let elapsed = wallClock() - start
        print(
            "\(name): LAUNCH→TASK_RUNNING p50 \(ms(percentile(latencies, 0.5))), p99 \(ms(percentile(latencies, 0.99)))   [floor \(floorLatency)]"
        )
        print(
            "\(name): \(count) tasks in \(String(format: "%.2f", elapsed)) s = \(Int(Double(count) / elapsed)) tasks/s   [floor \(floorThroughput)]"
        )
        print(
            "\(name): CPU per task: executor + its workers \(ms((cpuSeconds(pid) - executorCPU) / Double(count))) (executor alone \(ms((cpuSeconds(pid, children: false) - executorOwnCPU) / Double(count)))), local agent \(ms((cpuSeconds(getpid()) - ownCPU) / Double(count)))"
        )
        print(
            "\(name): executor RSS now \(rssKiB(pid, "VmRSS") / 1024) MB (anonymous \(rssKiB(pid, "RssAnon") / 1024) MB, file \(rssKiB(pid, "RssFile") / 1024) MB), peak \(rssKiB(pid, "VmHWM") / 1024) MB"
        )
        // What stays once the executor gave back what it does not use (2 s after the last task).
        try await Task.sleep(for: .seconds(3))
        print(
            "\(name): idle again: executor RSS \(rssKiB(pid, "VmRSS") / 1024) MB (anonymous \(rssKiB(pid, "RssAnon") / 1024) MB)"
        )
    }
}

/// Mini-task results seen so far; used from the agent's predicate calls, one at a time.
final class ResultTally: @unchecked Sendable {
    private var next: Int
    private(set) var results = 0

    init(from index: Int) { next = index }

    func count(_ messages: [Data]) -> Int {
        while next < messages.count {
            results += String(decoding: messages[next], as: UTF8.self).components(separatedBy: "\"id\"").count - 1
            next += 1
        }
        return results
    }
}

extension Mesos_V1_TaskState {
    var isDone: Bool { self == .taskFinished || self == .taskFailed || self == .taskKilled || self == .taskError }
}

print("executor: \(executor)")
print("worker:   \(worker)")

// Idle memory.
if selected("idle") {
    try await withExecutor(properties: [:]) { agent, pid in
        try await Task.sleep(for: .seconds(3))
        print(
            "idle: executor RSS \(rssKiB(pid, "VmRSS") / 1024) MB (\(rssKiB(pid, "VmRSS")) KiB), of which anonymous \(rssKiB(pid, "RssAnon") / 1024) MB   [target ≤ 15 MB; Swift static-stdlib idle floor 3.9 MB, +Foundation 8.6 MB]"
        )
        // The first task after idling pays for bringing the executor's code back (minor faults).
        let start = wallClock()
        try await agent.launch(commandTask(agent, "after-idle"))
        let state = try await agent.waitUntil { $0.taskStates["after-idle"] == .taskFinished }
        if let running = state.updates(forTask: "after-idle").first(where: { $0.status.state == .taskRunning }) {
            print(
                "idle: first command task after idling, LAUNCH→TASK_RUNNING \(ms(running.status.timestamp - start))   [warm: see command p50]"
            )
        }
        // A burst of 500 tasks, then idle again.
        for index in 0..<500 { try await agent.launch(commandTask(agent, "burst-\(index)")) }
        _ = try await agent.waitUntil("the burst", timeout: .seconds(120)) { state in
            (0..<500).allSatisfy { state.taskStates["burst-\($0)"] == .taskFinished }
        }
        // The executor gives memory back 2 s after the burst (SPARK_MESOS_EXECUTOR_IDLE_RECLAIM).
        try await Task.sleep(for: .seconds(3))
        print(
            "idle: after a burst of 500 command tasks, RSS \(rssKiB(pid, "VmRSS") / 1024) MB (anonymous \(rssKiB(pid, "RssAnon") / 1024) MB), peak \(rssKiB(pid, "VmHWM") / 1024) MB"
        )
    }
}

if selected("command") {
    try await launchScenario(
        "command", properties: [:], count: taskCount, floorLatency: "0.12 ms spawn+POST",
        floorThroughput: "≈2000 spawns/s",
        make: { commandTask($0, $1) })
}
if selected("fine") {
    try await launchScenario(
        "fine",
        properties: [
            "spark.mesos.coarse": "false", "spark.mesos.executor.worker": worker, "spark.executor.cores": "2",
        ],
        count: taskCount, floorLatency: "≈0.5 ms fork + hello; target p50 ≤ 3 ms",
        floorThroughput: "≈2000 spawns/s; target ≥ 500",
        make: { closureTask($0, $1, "echo", "x") })
}
if selected("fine-cgroups") {
    // Paired: the same fine-mode scenario with a cgroup per task (limits from the task's cpus and
    // mem) and with cgroups turned off, alternating, so drift hits both alike.
    for round in 1...2 {
        for cgroups in [true, false] {
            try await launchScenario(
                "fine-cgroups-\(cgroups ? "on" : "off")-\(round)",
                properties: [
                    "spark.mesos.coarse": "false", "spark.mesos.executor.worker": worker, "spark.executor.cores": "2",
                ],
                environment: ["SPARK_MESOS_EXECUTOR_CGROUPS": cgroups ? "auto" : "off"],
                count: taskCount, floorLatency: "target p50 ≤ 3 ms", floorThroughput: "target ≥ 500 with cgroups",
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
    try await launchScenario(
        "fine-spawned",
        properties: [
            "spark.mesos.coarse": "false", "spark.mesos.executor.worker": worker, "spark.executor.cores": "2",
            "spark.mesos.executor.worker.forkServer": "false",
        ],
        count: taskCount, floorLatency: "≈1.5–2 ms spawn + Swift start + hello",
        floorThroughput: "≈2000 spawns/s",
        make: { closureTask($0, $1, "echo", "x") })
}
if selected("coarse") {
    try await launchScenario(
        "coarse",
        properties: ["spark.mesos.coarse": "true", "spark.mesos.executor.worker": worker, "spark.executor.cores": "2"],
        count: taskCount, floorLatency: "≈0.1 ms; target p50 ≤ 1 ms", floorThroughput: "≈19k POSTs/s sequential",
        make: { closureTask($0, $1, "echo", "x") })
}

// Mini-tasks through MESSAGE batches.
if selected("minis") {
    try await withExecutor(
        properties: ["spark.mesos.coarse": "true", "spark.mesos.executor.worker": worker, "spark.executor.cores": "2"]
    ) { agent, pid in
        // Warm the pool first.
        await agent.sendMessage(Data(#"{"tasks":[{"id":"warm","function":"echo","payload":""}]}"#.utf8))
        _ = try await agent.waitUntil { !$0.messages.isEmpty }
        let before = await agent.state.messages.count
        let batchSize = 500
        let start = wallClock()
        // Counts ids in the messages after the warm-up (each result carries one "id"), looking at
        // each message once: the predicate runs on every change of the agent's state.
        let tally = ResultTally(from: before)
        // In waves: a wave's batches are sent at once; the next wave waits for their results.
        let waveSize = (miniCount + waves - 1) / waves
        for wave in stride(from: 0, to: miniCount, by: waveSize) {
            let end = min(miniCount, wave + waveSize)
            for batch in stride(from: wave, to: end, by: batchSize) {
                let tasks = (batch..<min(batch + batchSize, end)).map {
                    #"{"id":"m\#($0)","function":"echo","payload":"eA=="}"#
                }
                await agent.sendMessage(Data(#"{"tasks":[\#(tasks.joined(separator: ","))]}"#.utf8))
            }
            _ = try await agent.waitUntil("mini-task results", timeout: .seconds(600)) { state in
                tally.count(state.messages) >= end
            }
        }
        let elapsed = wallClock() - start
        let messages = await agent.state.messages.count - before
        let resultCount = tally.results
        print(
            "mini-tasks: \(resultCount) in \(String(format: "%.2f", elapsed)) s = \(Int(Double(resultCount) / elapsed))/s in \(messages) result messages   [target ≥ 20,000/s; pipelined pipe floor 0.48–0.74 M msg/s]"
        )
        print("mini-tasks: executor RSS now \(rssKiB(pid, "VmRSS") / 1024) MB, peak \(rssKiB(pid, "VmHWM") / 1024) MB")
    }
}

/// Figures collected inside an executor scope.
final class Timings: @unchecked Sendable { var values: [Double] = [] }

// Package fetch: a Spark-sized package served by the agent over loopback, against `curl | tar xz`.
if selected("fetch") {
    let work = NSTemporaryDirectory() + "sme-fetch-bench-" + UUID().uuidString
    let tree = work + "/spark-bench-1.0-bin"
    try FileManager.default.createDirectory(atPath: tree + "/jars", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: tree + "/python", withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: work) }
    func shell(_ command: String) throws -> Double {
        let start = wallClock()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
        return wallClock() - start
    }
    // ~300 MB in ~1,200 files: 250 "jars" of mixed compressible/random bytes, 950 small text files.
    _ = try shell(
        """
        cd \(tree) && for i in $(seq 1 250); do head -c 600000 /dev/urandom > jars/lib-$i.jar; \
        yes "org.apache.spark.sql.catalyst.expressions.codegen.GeneratedClass$i" | head -c 600000 >> jars/lib-$i.jar; done && \
        for i in $(seq 1 950); do yes "def f$i(x): return x * $i" | head -c 4000 > python/mod_$i.py; done
        """)
    let tarball = work + "/spark-bench-1.0-bin.tgz"
    _ = try shell("cd \(work) && tar czf \(tarball) spark-bench-1.0-bin")
    let size = (try FileManager.default.attributesOfItem(atPath: tarball)[.size] as? Int) ?? 0
    let files = try FileManager.default.subpathsOfDirectory(atPath: tree).count
    let digest = Process()
    digest.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    digest.arguments = [tarball]
    let digestPipe = Pipe()
    digest.standardOutput = digestPipe
    try digest.run()
    let sha256 = String(decoding: digestPipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64)
    digest.waitUntilExit()
    print(
        "fetch: package \(size / 1_000_000) MB compressed, \(files) entries, verified by #sha256=\(sha256.prefix(12))…")
    var configuration = LocalAgentConfiguration()
    configuration.sandboxDirectory = work
    try await withLocalAgent(configuration) { server in
        let url = await server.publish(file: tarball, as: "spark-bench-1.0-bin.tgz")
        let cache = work + "/cache"
        for round in 1...3 {
            try? FileManager.default.removeItem(atPath: cache)
            let curlDirectory = work + "/curl-\(round)"
            try FileManager.default.createDirectory(atPath: curlDirectory, withIntermediateDirectories: true)
            let curl = try shell("curl -s '\(url)' | tar xz -C \(curlDirectory)")
            try? FileManager.default.removeItem(atPath: curlDirectory)
            let timings = Timings()
            for _ in 0..<2 {  // cold, then a cache hit from a new executor process
                try await withExecutor(
                    properties: ["spark.executor.uri": url + "#sha256=" + sha256], cacheDirectory: cache
                ) { agent, _ in
                    let subscribed = wallClock()
                    var task = agent.makeTask("t")
                    task.command.value = "true"
                    try await agent.launch(task)
                    let state = try await agent.waitUntil("running", timeout: .seconds(120)) {
                        $0.taskStates["t"] == .taskRunning || $0.taskStates["t"] == .taskFinished
                            || $0.taskStates["t"] == .taskFailed
                    }
                    let running = state.updates(forTask: "t").first { $0.status.state == .taskRunning }
                    timings.values.append((running?.status.timestamp ?? .nan) - subscribed)
                }
            }
            print(
                "fetch round \(round): curl | tar xz \(String(format: "%.2f", curl)) s; executor cold fetch+verify+extract \(String(format: "%.2f", timings.values[0])) s (\(String(format: "%.2f", timings.values[0] / curl))×); cache hit \(ms(timings.values[1]))   [floors: curl|tar xz ≈2.3 s, zlib inflate ≈1.6 s, hard-link tree ≈17 ms; targets cold ≤ 1.0× (goal 0.7×), hit ≤ 50 ms]"
            )
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
        let floor = Process()
        floor.executableURL = URL(fileURLWithPath: "/bin/sh")
        floor.arguments = ["-c", "\(writer) | (cat > \(work)/cat-out; times)"]
        let output = Pipe()
        floor.standardOutput = output
        let floorStart = wallClock()
        try floor.run()
        let times = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        floor.waitUntilExit()
        let floorWall = wallClock() - floorStart
        try? FileManager.default.removeItem(atPath: work + "/cat-out")
        // "0m0.01s 0m0.02s" for the shell, then its children's (cat's) user and system time.
        let seconds =
            times.split(separator: "\n").last.map {
                $0.split(separator: " ").map { field -> Double in
                    let parts = field.dropLast().split(separator: "m")
                    return (Double(parts.first ?? "0") ?? 0) * 60 + (Double(parts.last ?? "0") ?? 0)
                }.reduce(0, +)
            } ?? .nan
        try await withExecutor(properties: [:]) { agent, pid in
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
            print(
                "logs round \(round): \(logMiB) MiB to stdout in \(String(format: "%.2f", wall)) s; executor CPU \(String(format: "%.3f", cpu * 1000 / Double(logMiB))) ms/MiB (\(String(format: "%.2f", cpu)) s)   [floor: cat pipe→file \(String(format: "%.3f", seconds * 1000 / Double(logMiB))) ms/MiB, \(String(format: "%.2f", floorWall)) s wall]"
            )
        }
    }
}
