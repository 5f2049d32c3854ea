import Foundation
import Isolation

#if canImport(Glibc)
    import Glibc
#endif

/// What this machine does at best, measured at the start of the run the figures come from, and
/// again right before each scenario (see ``refined(_:)``).
struct Floors {
    /// The trivial program spawned and reaped (a static C `return 0`, else /bin/true); the command
    /// tasks run it too.
    var trivialProgramPath: String
    var trivialProgram: String {
        trivialProgramPath == "/bin/true" ? "/bin/true (no cc -static)" : "static C `return 0`"
    }
    /// The compiled floor program (nil without a C compiler) and the Swift hello.
    var floorProgram: String?
    var helloPath: String
    /// One posix_spawn + waitpid of it, from this process.
    var spawnSeconds: Double
    /// A static-stdlib Swift hello's exec to exit (median).
    var helloSeconds: Double
    /// One 100-byte round trip through a pipe to a child and back (nil without a C compiler).
    var pipeRoundTripSeconds: Double?
    /// 100-byte frames per second to a pipe child and back, 16 in flight.
    var pipelinedPerSecond: Double?
    /// One 350-byte POST answered 202 on a keep-alive loopback connection, C on both ends.
    var postSeconds: Double?
    /// Moving a process into a cgroup 100 ms after the previous move (median of 11): what the first
    /// task after a quiet spell pays before it can run (nil without cgroups or a C compiler).
    var cgroupMoveSeconds: Double?
    /// The machine's compute speed now (see ``MachineSpeed``).
    var machineSpeed: MachineSpeed?

    var spawnsPerSecond: Double { 1 / spawnSeconds }
    var spawnText: String { perSecond(spawnsPerSecond) + " spawn+reap" }
    var postText: String? { postSeconds.map { "POST \(ms($0))" } }

    /// The floors a scenario can be measured again by.
    enum Kind { case spawn, hello, pipe, pipelined, post }

    /// Compiles the floor program in `work` and measures every floor; `hello` is the Swift hello.
    static func measure(work: String, hello: String) throws -> Floors {
        let source = work + "/floors.c"
        let program = work + "/floors"
        try floorProgramSource.write(toFile: source, atomically: true, encoding: .utf8)
        let compiled = (try? shell("cc -O2 -static -o \(program) \(source) 2>/dev/null")) != nil
        let trivial = compiled ? program : "/bin/true"
        let floorProgram = compiled ? program : nil
        return Floors(
            trivialProgramPath: trivial, floorProgram: floorProgram, helloPath: hello,
            spawnSeconds: try timeSpawn(trivial), helloSeconds: try timeHello(hello),
            pipeRoundTripSeconds: try rate(floorProgram, "pipe", 20000).map { 1 / $0 },
            pipelinedPerSecond: try rate(floorProgram, "pipelined", 200_000),
            postSeconds: try rate(floorProgram, "post", 20000).map { 1 / $0 },
            cgroupMoveSeconds: floorProgram.flatMap(cgroupMove), machineSpeed: MachineSpeed.measure(work: work))
    }

    /// These floors with `kinds` measured again now, each kept at the better of the two: a floor is
    /// the machine's best case, and a slow spell of the VM while the run's first floors were taken
    /// made every ratio after them look better than it was (one whole run measured pipelined pipe
    /// messages at 108k/s, against 470–670k/s in the runs around it, and printed mini-tasks at 0.67×).
    /// The run keeps what this returns, so each scenario is divided by the best of every
    /// measurement so far: JSON mini-tasks, measured right after the protobuf ones, were once
    /// divided by the run's first 335k/s while the protobuf ones had just measured 565k/s (0.43×
    /// against 0.30×).
    func refined(_ kinds: Set<Kind>) throws -> Floors {
        var floors = self
        if kinds.contains(.spawn) { floors.spawnSeconds = min(spawnSeconds, try Self.timeSpawn(trivialProgramPath)) }
        if kinds.contains(.hello) { floors.helloSeconds = min(helloSeconds, try Self.timeHello(helloPath)) }
        if kinds.contains(.pipe), let old = pipeRoundTripSeconds, let rate = try Self.rate(floorProgram, "pipe", 20000)
        {
            floors.pipeRoundTripSeconds = min(old, 1 / rate)
        }
        if kinds.contains(.pipelined), let old = pipelinedPerSecond,
            let rate = try Self.rate(floorProgram, "pipelined", 200_000)
        {
            floors.pipelinedPerSecond = max(old, rate)
        }
        if kinds.contains(.post), let old = postSeconds, let rate = try Self.rate(floorProgram, "post", 20000) {
            floors.postSeconds = min(old, 1 / rate)
        }
        return floors
    }

    /// One spawn and reap of `program`: the median of 3 runs of 500.
    private static func timeSpawn(_ program: String) throws -> Double {
        let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { close(devNull) }
        var runs: [Double] = []
        for _ in 0..<3 {
            let count = 500
            let start = wallClock()
            for _ in 0..<count { reap(try spawn([program], stdout: devNull)) }
            runs.append((wallClock() - start) / Double(count))
        }
        return percentile(runs, 0.5)
    }

    /// The hello's exec to exit: the median of 31.
    private static func timeHello(_ hello: String) throws -> Double {
        let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { close(devNull) }
        var runs: [Double] = []
        for _ in 0..<31 {
            let start = wallClock()
            reap(try spawn([hello], stdout: devNull))
            runs.append(wallClock() - start)
        }
        return percentile(runs, 0.5)
    }

    /// The floor program's figure for `mode` (per second): the median of 3 runs.
    private static func rate(_ program: String?, _ mode: String, _ count: Int) throws -> Double? {
        guard let program else { return nil }
        var runs: [Double] = []
        for _ in 0..<3 {
            guard let value = Double(try shell("\(program) \(mode) \(count)").output.trimmed) else { return nil }
            runs.append(value)
        }
        return percentile(runs, 0.5)
    }

    /// Runs the floor program's `move` mode in a cgroup it makes next to its own, in the first
    /// writable hierarchy (v2 first); nil when there is none.
    static func cgroupMove(_ program: String) -> Double? {
        guard let mountInfo = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8),
            let procCgroup = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)
        else { return nil }
        let hierarchies = CgroupHierarchy.parse(mountInfo: mountInfo, procCgroup: procCgroup)
        for hierarchy in hierarchies.filter({ $0.version == .v2 }) + hierarchies.filter({ $0.version != .v2 }) {
            let own = hierarchy.directory(of: hierarchy.ownPath)
            let target = own + "/sme-floor-" + UUID().uuidString
            guard mkdir(target, 0o755) == 0 else { continue }
            defer { rmdir(target) }
            let command = "\(program) move 11 '\(own)/cgroup.procs' '\(target)/cgroup.procs'"
            if let output = try? shell(command).output, let seconds = Double(output.trimmed) { return seconds }
        }
        return nil
    }

    /// The floors' own rows.
    func printRows() {
        row(
            "floor: spawn+reap of the trivial program, \(trivialProgram)", ms(spawnSeconds),
            floor: perSecond(spawnsPerSecond))
        row("floor: static Swift hello, exec to exit (median of 31)", ms(helloSeconds))
        row("floor: pipe round trip, 100 B (C, one child)", pipeRoundTripSeconds.map(ms) ?? "n/a (no cc)")
        row("floor: pipelined pipe messages, 16 in flight (C)", pipelinedPerSecond.map(perSecond) ?? "n/a (no cc)")
        row("floor: keep-alive loopback POST, 350 B → 202 (C both ends)", postSeconds.map(ms) ?? "n/a (no cc)")
        row(
            "floor: a move into a cgroup 100 ms after the last one (C, median of 11)",
            cgroupMoveSeconds.map(ms) ?? "n/a (no writable cgroup or no cc)")
        MachineSpeed.printRow(machineSpeed, when: "at the start")
    }
}

/// How fast this machine computes now: coreutils' `sha256sum` (software SHA-256, one core) over
/// 64 MiB in the page cache, against the 540 MB/s limits.md measured (its row 4k). Not a floor of
/// any figure: the floors above are system calls, wake-ups and spawns, and a slow spell of the VM's
/// CPU can leave them as fast as ever while the executor's own code runs slower (2026-12-05, a fresh
/// VM: the floors as usual, the executor's Swift code about 2.5× slower, `sha256sum` 3× slower), so
/// that every ratio looks worse for a reason no change made. This row says when that is so.
struct MachineSpeed {
    static let limitsMegabytesPerSecond = 540.0
    static let megabytes = 64
    /// MB (10^6 bytes) hashed per second: the median of 3 runs.
    var megabytesPerSecond: Double

    /// Nil when `sha256sum` is not there or fails.
    static func measure(work: String) -> MachineSpeed? {
        let path = "/usr/bin/sha256sum"
        let input = work + "/machine-speed-input"
        guard access(path, X_OK) == 0,
            FileManager.default.createFile(atPath: input, contents: Data(count: megabytes << 20))
        else { return nil }
        defer { unlink(input) }
        let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { close(devNull) }
        var runs: [Double] = []
        for _ in 0..<3 {
            let start = wallClock()
            guard let pid = try? spawn([path, input], stdout: devNull), reap(pid) == 0 else { return nil }
            runs.append(Double(megabytes << 20) / 1e6 / (wallClock() - start))
        }
        return MachineSpeed(megabytesPerSecond: percentile(runs, 0.5))
    }

    static func printRow(_ speed: MachineSpeed?, when: String) {
        row(
            "machine speed \(when): coreutils sha256sum of \(megabytes) MiB in memory (software SHA-256, one core)",
            speed.map { String(format: "%.0f MB/s", $0.megabytesPerSecond) } ?? "n/a (no sha256sum)",
            floor: String(format: "%.0f MB/s in limits.md (4k)", limitsMegabytesPerSecond),
            ratio: speed.map { $0.megabytesPerSecond / limitsMegabytesPerSecond },
            target: "not a target: below 1× every figure's own code runs slower than on the day the floors were set")
    }
}

extension String {
    var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}

// MARK: The table

/// Prints the table's header; every figure is then one row.
func printHeader() {
    print("| figure | value | floor (same run) | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
}

func row(_ figure: String, _ value: String, floor: String = "", ratio: Double? = nil, target: String = "") {
    let ratioText = ratio.map { $0.isFinite ? String(format: "%.2f×", $0) : "–" } ?? ""
    // A `|` inside a cell (`curl | tar xz`) would end it.
    let cells = [figure, value, floor, ratioText, target].map { $0.replacingOccurrences(of: "|", with: "\\|") }
    print("| " + cells.joined(separator: " | ") + " |")
    fflush(nil)
}

func ms(_ seconds: Double) -> String {
    seconds < 0.0001 ? String(format: "%.1f µs", seconds * 1e6) : String(format: "%.2f ms", seconds * 1000)
}

func perSecond(_ value: Double) -> String {
    value >= 10000 ? String(format: "%.0fk/s", value / 1000) : String(format: "%.0f/s", value)
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int(Double(sorted.count - 1) * p))]
}
