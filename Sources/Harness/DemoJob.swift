public import HarnessJobs
import Foundation
import MesosProto

/// The built-in demo: a short mixed job run in coarse mode and then in fine mode — a π
/// estimate, a word count, a failing task, a killed task, a health-checked service that goes
/// unhealthy and is killed, a task that goes past its memory limit, and a batch — so that every part of the executor is seen working in
/// well under a minute.
public enum DemoJob {
    static let words = "the quick brown fox jumps over the lazy dog and the dog sleeps"

    /// Writes the demo package (the demo worker, when one is given) into `directory`; returns
    /// the package directory.
    public static func makePackage(in directory: String, worker: String?) throws -> String {
        let package = directory + "/demo-package"
        try FileManager.default.createDirectory(atPath: package + "/bin", withIntermediateDirectories: true)
        try Data("spark-mesos-executor harness demo package\n".utf8).write(
            to: URL(fileURLWithPath: package + "/README"))
        if let worker { try FileManager.default.copyItem(atPath: worker, toPath: package + "/bin/demo-worker") }
        return package
    }

    /// The demo's two jobs. With `closures`, the work runs as closures and mini-tasks on the
    /// demo worker; without (no demo worker built yet), as command tasks doing the same.
    public static func jobs(package: String, closures: Bool) -> [Job] {
        ExecutorMode.allCases.map { mode in
            var settings = ExecutorSettings()
            settings.mode = mode
            settings.package = .local(path: package)
            settings.shutdownGracePeriod = .seconds(3)
            // Coarse workers share the executor's memory: 256 MB, which the hog goes past.
            settings.resources = ["cpus": 2, "mem": 256]
            if closures { settings.worker = "bin/demo-worker" }
            let tasks = (closures ? closureTasks : commandTasks) + [service, closures ? closureHog : commandHog]
            // Coarse workers share one memory limit, so the hog goes last there, alone: while the
            // kernel's first victim exits, another worker's allocation can make it kill a second
            // (README, Isolation), and a bystander's TASK_FAILED would make the demo's outcome
            // depend on the machine's load.
            let hogAlone = closures && mode == .coarse
            var steps: [JobStep] = [
                .launch(
                    ["pi", "wordcount", "fail", "sleeper", "service"] + (hogAlone ? [] : ["hog"])
                        + (closures ? ["progress"] : [])),
                .wait(["sleeper": .running]),
                .kill("sleeper", grace: .seconds(1)),
            ]
            if closures {
                steps.append(.miniTasks(miniTasks))
            } else {
                steps.append(.launchGroup(["batch-1", "batch-2", "batch-3"]))
            }
            if hogAlone { steps += [.waitForAll, .launch(["hog"])] }
            steps += [.waitForAll, .shutdown]
            return Job(
                name: "demo (\(mode.rawValue))", source: "built-in demo", executor: settings,
                tasks: tasks, steps: steps, timeout: .seconds(60))
        }
    }

    static let closureTasks: [JobTask] = [
        JobTask(id: "pi", kind: .closure(function: "pi", payload: Array("2000000".utf8))),
        JobTask(id: "wordcount", kind: .closure(function: "wordcount", payload: Array(words.utf8))),
        JobTask(id: "fail", kind: .closure(function: "fail", payload: Array("division by zero".utf8)), expect: .failed),
        JobTask(id: "sleeper", kind: .closure(function: "sleep", payload: Array("30000".utf8)), expect: .killed),
        // Reports its progress 20 times over a second: shown live, and in the report.
        JobTask(id: "progress", kind: .closure(function: "progress", payload: Array("20,50".utf8))),
    ]

    /// A service that is healthy for a second, then fails its COMMAND health check three times in a
    /// row and is killed (TASK_KILLED, `healthy=false`).
    static let service: JobTask = {
        var health = Mesos_V1_HealthCheck()
        health.type = .command
        health.command.value = "test -e service-up"
        health.delaySeconds = 0
        health.intervalSeconds = 0.2
        health.timeoutSeconds = 10
        health.consecutiveFailures = 3
        // Failures before the first success are ignored for this long: the check may run before the
        // service is up.
        health.gracePeriodSeconds = 30
        return JobTask(
            id: "service",
            kind: .command(CommandSpec(value: "touch service-up; sleep 1; rm -f service-up; exec sleep 60")),
            expect: .killed, killGracePeriod: .seconds(1), healthCheck: health)
    }()

    /// A task that allocates past its memory limit (64 MB in fine mode; the executor's 256 MB its coarse
    /// workers share): with cgroups the kernel stops it and it ends TASK_FAILED with
    /// REASON_CONTAINER_LIMITATION_MEMORY; without, it fails all the same, saying nothing stopped it.
    static let closureHog = JobTask(
        id: "hog", kind: .closure(function: "exceed", payload: Array("512".utf8)), expect: .failed,
        resources: ["cpus": 0.5, "mem": 64])

    static let commandHog = JobTask(
        id: "hog",
        kind: .command(
            CommandSpec(value: #"awk 'BEGIN { s = sprintf("%536870912s", ""); print length(s) }'; exit 1"#)),
        expect: .failed, resources: ["cpus": 0.5, "mem": 64])

    static let miniTasks: [MiniTaskSpec] = (1...5).map { index in
        MiniTaskSpec(id: "mini-\(index)", function: "pi", payload: Array("\(index * 100_000)".utf8))
    }

    static let commandTasks: [JobTask] = [
        JobTask(
            id: "pi",
            kind: .command(
                CommandSpec(
                    value: """
                        awk 'BEGIN { srand(7); n = 400000; for (i = 0; i < n; i++) { x = rand(); y = rand(); \
                        if (x*x + y*y <= 1) c++ }; printf "pi ~ %.4f\\n", 4*c/n }'
                        """))),
        JobTask(
            id: "wordcount",
            kind: .command(
                CommandSpec(
                    value: "echo '\(words)' | tr ' ' '\\n' | sort | uniq -c | sort -rn | head -3 "
                        + "| awk '{ printf \"%s=%s \", $2, $1 } END { print \"\" }'"))),
        JobTask(
            id: "fail", kind: .command(CommandSpec(value: "echo 'division by zero' >&2; exit 3")), expect: .failed),
        JobTask(
            id: "sleeper", kind: .command(CommandSpec(value: "exec sleep 30")), expect: .killed,
            killGracePeriod: .seconds(1)),
        JobTask(id: "batch-1", kind: .command(CommandSpec(value: "echo batch one"))),
        JobTask(id: "batch-2", kind: .command(CommandSpec(value: "echo batch two"))),
        JobTask(id: "batch-3", kind: .command(CommandSpec(value: "echo batch three"))),
    ]
}
