public import HarnessJobs
import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import ProcessSupervision

/// How the harness runs executors, whatever the job.
public struct HarnessOptions: Sendable {
    /// The executor binary, started with ``executorArguments`` and the agent's environment.
    public var executorPath: String
    public var executorArguments: [String]
    /// Keep the run's directory (sandbox, package) instead of removing it.
    public var keepSandbox: Bool = false
    /// Where the run's directory is made.
    public var temporaryDirectory: String = NSTemporaryDirectory()
    /// Triggered on Ctrl-C: the job stops gracefully and the report says it was interrupted.
    public var interruption = Interruption()

    /// Options for `executorPath`.
    public init(executorPath: String, executorArguments: [String] = []) {
        self.executorPath = executorPath
        self.executorArguments = executorArguments
    }
}

/// Runs one job: a local agent on loopback, the package served over loopback HTTP, the real
/// executor as a child process with exactly an agent's environment; then the report.
public enum JobRunner {
    /// Runs `job`; `output` gets live lines. Every child process and temporary file is gone
    /// when this returns (unless `keepSandbox`), also when the calling task is cancelled.
    public static func run(
        _ job: Job, options: HarnessOptions, output: (any RunOutput)? = nil
    ) async throws -> RunReport {
        let directory = try makeDirectory(in: options.temporaryDirectory)
        defer { if !options.keepSandbox { try? FileManager.default.removeItem(atPath: directory) } }
        let sandbox = directory + "/sandbox"
        // 0750, as Mesos's agent makes sandboxes (closed to other users).
        try FileManager.default.createDirectory(
            atPath: sandbox, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        var packageURI: String?
        var packageFile: (name: String, path: String)?
        switch job.executor.package {
        case .local(let path):
            // Written next to the sandbox and served by the agent at /files/download, as a
            // Mesos agent serves files, so the executor's real HTTP fetch path runs.
            let (name, bytes) = try await PackagePreparation.pack(path, into: directory)
            let file = directory + "/package-" + name
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            packageFile = (name, file)
        case .uri(let uri):
            packageURI = uri
        case nil:
            break
        }
        return try await drive(
            job, options, directory, sandbox, output, packageURI: packageURI, packageFile: packageFile)
    }

    static func drive(
        _ job: Job, _ options: HarnessOptions, _ directory: String, _ sandbox: String, _ output: (any RunOutput)?,
        packageURI: String?, packageFile: (name: String, path: String)?
    ) async throws -> RunReport {
        let configuration = agentConfiguration(job, options, sandbox: sandbox, packageURI: packageURI)
        return try await withLocalAgent(configuration) { agent in
            var packageURI = packageURI
            if let packageFile {
                let url = await agent.publish(file: packageFile.path, as: packageFile.name)
                packageURI = url
                await agent.setExecutorData(executorData(job, packageURI: url))
            }
            let environment = await agent.environment(sandboxDirectory: sandbox)
            let recorder = RunRecorder(output: output)
            let executor = try ExecutorProcess.start(
                executable: options.executorPath, arguments: options.executorArguments, environment: environment,
                sandbox: sandbox)
            await recorder.step(.start, "executor started (pid \(executor.pid)), agent at \(await agent.endpoint)")
            var problems: [String] = []
            var shutdownAt: Double?
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await recorder.follow(agent) }
                group.addTask {
                    let termination = await executor.waitForExit()
                    await recorder.executorExited(termination.description, at: executor.exitedAt ?? .now)
                }
                group.addTask { await trackDescendants(executor, agent) }
                let script = JobScript(
                    job: job, agent: agent, recorder: recorder, executor: executor,
                    interruption: options.interruption, deadline: .now + job.timeout)
                let (scriptProblems, shutdownSent) = await script.run()
                problems += scriptProblems
                if !shutdownSent, executor.termination == nil {
                    let why = options.interruption.isInterrupted ? "interrupted" : "end of job"
                    await recorder.step(.shutdown, "shutdown (\(why))")
                    await agent.shutdown()
                }
                shutdownAt = await recorder.log.steps.last { $0.kind == .shutdown }?.atMs
                let grace = configuration.executorShutdownGracePeriod
                await executor.terminate(within: grace + .seconds(2), grace: .seconds(3)) {
                    problems.append(
                        "the executor did not exit within \(JobScript.format(grace + .seconds(2))) of SHUTDOWN; sent SIGTERM"
                    )
                    await recorder.step(.problem, "executor still running after the shutdown grace period: SIGTERM")
                }
                group.cancelAll()
            }
            let leftovers = executor.killLeftovers()
            await recorder.catchUp(with: agent)
            let log = await recorder.log
            let termination = executor.termination ?? .exited(-1)
            var packageDownloads = 0
            if let packageFile { packageDownloads = await agent.downloads[packageFile.name] ?? 0 }
            return RunReport(
                RunFacts(
                    job: job, executorPath: options.executorPath, log: log, agent: await agent.state,
                    termination: termination.description, exitedCleanly: termination.isSuccess,
                    shutdownSentAtMs: shutdownAt,
                    executorMayExitEarly: !job.executor.checkpoint
                        && job.steps.contains { if case .restartAgent = $0 { true } else { false } },
                    problems: problems, leftovers: leftovers, packageURI: packageURI,
                    packageDownloads: packageDownloads,
                    sandbox: sandbox, keptSandbox: options.keepSandbox, startedAt: recorder.startDate,
                    durationMs: await recorder.now, interrupted: options.interruption.isInterrupted || Task.isCancelled)
            )
        }
    }

    /// Notes the executor's process tree after the agent sees something happen, so that whatever
    /// it leaves behind can be killed at the end (anything that escaped the tree meanwhile is
    /// still found by its `MESOS_SANDBOX`). A look reads every process's `/proc/<pid>/stat`: while
    /// calls stream in (hundreds a second), one look covers all that arrived within
    /// `descendantsInterval`, so the harness does not compete with the executor for the machine.
    static func trackDescendants(_ executor: ExecutorProcess, _ agent: LocalAgent) async {
        var seen = ObservationMark()
        while !Task.isCancelled {
            do { try await agent.waitForObservations(after: seen) } catch { continue }
            seen = await agent.observationMark
            executor.trackDescendants()
            try? await Task.sleep(for: descendantsInterval)
        }
    }

    /// The least time between two looks at the executor's process tree.
    static let descendantsInterval = Duration.milliseconds(50)

    static func agentConfiguration(
        _ job: Job, _ options: HarnessOptions, sandbox: String, packageURI: String?
    ) -> LocalAgentConfiguration {
        var configuration = LocalAgentConfiguration()
        configuration.useUniqueFrameworkID()
        configuration.sandboxDirectory = sandbox
        configuration.checkpoint = job.executor.checkpoint
        configuration.executorShutdownGracePeriod = job.executor.shutdownGracePeriod
        configuration.reregistrationTimeout = .seconds(2)
        configuration.frameworkInfo.name = "spark-mesos-executor harness"
        configuration.executorID = "harness-executor"
        configuration.executorInfo.name = "harness: \(job.name)"
        configuration.executorInfo.command.value = options.executorPath
        configuration.executorInfo.data = Data(executorData(job, packageURI: packageURI).utf8)
        configuration.executorInfo.resources = JobScript.scalarResources(job.executor.resources)
        var encoding = Mesos_V1_Environment.Variable()
        encoding.name = "SPARK_MESOS_EXECUTOR_ENCODING"
        encoding.value = job.executor.encoding.rawValue
        configuration.executorInfo.command.environment.variables.append(encoding)
        return configuration
    }

    /// `ExecutorInfo.data`: the job's Spark properties as a JSON object.
    static func executorData(_ job: Job, packageURI: String?) -> String {
        let properties = job.executor.sparkProperties(packageURI: packageURI)
        let data = (try? JSONSerialization.data(withJSONObject: properties, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func makeDirectory(in parent: String) throws -> String {
        var template = Array((parent.hasSuffix("/") ? parent : parent + "/").utf8CString.dropLast())
        template += Array("sme-harness-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw HarnessError.ioFailed(
                "cannot make a temporary directory in \(parent): \(String(cString: strerror(errno)))")
        }
        // Passable, not listable, by other users, as the directories above a Mesos agent's
        // sandboxes are passable: a task of another user must reach its own directory in there.
        chmod(made, 0o711)
        return String(cString: made)
    }
}
