import HarnessJobs
import ArgumentParser
import Dispatch
import Foundation
import Harness
import MesosCodec

#if canImport(Glibc)
    import Glibc
#endif

/// Harness mode: run the executor against a local agent and a job file (or the built-in demo).
///
/// Its own binary, so the executor an agent starts carries none of the harness (Foundation, YAML,
/// the local agent); `spark-mesos-executor harness …` runs this program.
@main
struct HarnessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spark-mesos-executor harness",
        abstract: "Try the executor without a cluster: a local agent drives it through a job.",
        discussion: """
            Starts a Mesos agent stand-in on loopback, launches the executor as a child process with \
            exactly the environment an agent gives it (own sandbox, own process group), serves the \
            job's package over loopback HTTP, carries out the job's steps, and prints a table per \
            task. Exits 1 when a task does not end as the job expects, updates are not exactly-once, \
            the agent saw a protocol violation, or the executor left processes behind.

            Without JOB, runs the built-in demo (coarse mode, then fine mode).
            Example job files: Sources/Harness/Examples/.
            """)

    @Argument(help: "A job file (.json, or .yaml/.yml). Omit for the built-in demo.")
    var job: String?

    @Option(name: .long, help: "Run this executor binary instead of this one (any Mesos v1 executor).")
    var executor: String?

    @Option(name: .long, help: "Override the job's encoding: protobuf or json.")
    var encoding: String?

    @Option(name: .long, help: "Write everything (calls, events, per-task timeline, timings) as JSON here.")
    var report: String?

    @Option(name: .long, help: "Write a self-contained HTML timeline of the run here.")
    var html: String?

    @Flag(name: .long, help: "Keep the sandbox and print its path.")
    var keepSandbox = false

    @Flag(name: .long, help: "Plain lines even on a terminal (no live progress line).")
    var plain = false

    func validate() throws {
        if let encoding, WireEncoding(rawValue: encoding) == nil {
            throw ValidationError("--encoding '\(encoding)' is not valid; expected protobuf or json")
        }
        if let executor, access(executor, X_OK) != 0 {
            throw ValidationError("--executor '\(executor)' is not an executable file")
        }
    }

    func run() async throws {
        let console = ConsoleOutput(terminal: plain ? false : nil)
        let ownPath = Self.ownExecutable()
        let directory = (ownPath as NSString).deletingLastPathComponent
        var options = HarnessOptions(executorPath: executor ?? directory + "/spark-mesos-executor")
        options.keepSandbox = keepSandbox
        var jobs: [Job]
        var demoDirectory: String?
        do {
            if let job {
                jobs = [try JobParser.load(path: job)]
            } else {
                let directory = NSTemporaryDirectory() + "sme-demo-" + UUID().uuidString
                demoDirectory = directory
                let worker = Self.demoWorker(nextTo: ownPath)
                let package = try DemoJob.makePackage(in: directory, worker: worker)
                jobs = DemoJob.jobs(package: package, closures: worker != nil)
                console.print(
                    worker == nil
                        ? "demo: no demo-worker built next to \(ownPath); closures and mini-tasks are shown as command tasks"
                        : "demo: closures and mini-tasks run on \(worker!)")
            }
        } catch let error where error is JobFileError || error is HarnessError {
            console.print("spark-mesos-executor harness: \(error)")
            throw ExitCode(2)
        }
        defer { if let demoDirectory { try? FileManager.default.removeItem(atPath: demoDirectory) } }
        if let encoding, let wire = WireEncoding(rawValue: encoding) {
            for index in jobs.indices { jobs[index].executor.encoding = wire }
        }
        let reports = try await Self.runUntilInterrupted(jobs, options: options, console: console)
        let combined = HarnessReport(runs: reports)
        for line in try write(combined) { console.print(line) }
        for run in reports { console.print(ReportTable.render(run)) }
        if reports.contains(where: \.interrupted) { throw ExitCode(130) }
        if !combined.passed { throw ExitCode(1) }
    }

    /// Writes the report files; returns the lines saying where they went.
    func write(_ combined: HarnessReport) throws -> [String] {
        var lines: [String] = []
        if let report {
            try combined.json().write(to: URL(fileURLWithPath: report))
            lines.append("report written to \(report)")
        }
        if let html {
            try Data(HTMLReport.render(combined).utf8).write(to: URL(fileURLWithPath: html))
            lines.append("timeline written to \(html)")
        }
        return lines
    }

    /// Runs the jobs one after the other; SIGINT/SIGTERM cancel the run, which tears everything
    /// down and still yields the (interrupted) report.
    static func runUntilInterrupted(_ jobs: [Job], options: HarnessOptions, console: ConsoleOutput) async throws
        -> [RunReport]
    {
        let (signals, continuation) = AsyncStream.makeStream(of: Int32.self)
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
        defer { for source in sources { source.cancel() } }
        return try await withThrowingTaskGroup(of: [RunReport]?.self) { group in
            group.addTask {
                var reports: [RunReport] = []
                for job in jobs where !Task.isCancelled && !options.interruption.isInterrupted {
                    console.print("▶ \(job.name) (\(job.source))")
                    reports.append(try await JobRunner.run(job, options: options, output: console))
                }
                return reports
            }
            group.addTask {
                var count = 0
                for await _ in signals {
                    count += 1
                    if count == 1 {
                        console.print(
                            "interrupted: shutting the executor down and cleaning up (Ctrl-C again to hurry)…")
                        options.interruption.interrupt()
                    } else {
                        console.print("interrupted again: killing the executor now…")
                        return nil
                    }
                }
                return nil
            }
            while let next = try await group.next() {
                if let reports = next {
                    group.cancelAll()
                    return reports
                }
                group.cancelAll()
            }
            return []
        }
    }

    static func ownExecutable() -> String {
        // The directory of the real binary: next to it live spark-mesos-executor and demo-worker
        // (the build folder, or /usr/libexec/spark-mesos-executor once installed).
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The demo worker built alongside this binary, if any.
    static func demoWorker(nextTo executable: String) -> String? {
        let path = (executable as NSString).deletingLastPathComponent + "/demo-worker"
        return access(path, X_OK) == 0 ? path : nil
    }
}
