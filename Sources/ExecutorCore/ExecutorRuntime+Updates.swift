import TaskRunning
import AgentConnection
import Logging
import MesosCodec
import MesosProto

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

extension ExecutorRuntime {
    /// Turns a lifecycle report into a status update and queues it until acknowledged. A terminal
    /// update carries what the runner measured (`measurements`: usage labels, a limitation).
    func record(_ report: TaskLifecycle.Report, measurements: TaskMeasurements? = nil) {
        var status = Mesos_V1_TaskStatus()
        status.taskID.value = report.taskID
        status.state = report.state
        status.source = .executor
        status.executorID.value = configuration.executorID
        status.uuid = Self.uuidV4()
        status.timestamp = Self.now()
        if let reason = report.reason { status.reason = reason }
        if let message = report.message { status.message = message }
        if let data = report.data { status.data = .init(data) }
        var labels: [(key: String, value: String)] = []
        if let file = report.dataFile { labels.append((TaskOutcome.dataFileLabel, file)) }
        if let measurements, report.state.isTerminal {
            labels += measurements.labels
            if let limitation = measurements.limitation, report.state == .taskFailed { status.limitation = limitation }
        }
        if !labels.isEmpty {
            status.labels.labels = labels.map { pair in
                var label = Mesos_V1_Label()
                label.key = pair.key
                label.value = pair.value
                return label
            }
        }
        if let healthy = report.healthy { status.healthy = healthy }
        if let check = report.checkStatus ?? lifecycle.emptyCheckStatus(of: report.taskID) {
            status.checkStatus = check
        }
        var update = Mesos_V1_Executor_Call.Update()
        update.status = status
        ledger.append(update)
        logger.info(
            "\(report.state.name)",
            metadata: ["task": "\(report.taskID)", "message": "\(report.message ?? "")"])
        senderWakeupContinuation.yield()
    }

    /// Sends queued updates whenever there are some and the executor is subscribed.
    func senderLoop() async {
        var backoff = Duration.milliseconds(50)
        for await _ in senderWakeups {
            while !Task.isCancelled {
                let batch = takeSendable()
                if batch.isEmpty { break }
                // Read with the hand-out, in the same turn of the actor: these are sent only until
                // the next SUBSCRIBE, which carries whatever they were.
                let epoch = client.callEpoch
                var retry = false
                var progressed = false
                await withTaskGroup(of: (Mesos_V1_Executor_Call.Update, AgentError?).self) { group in
                    for update in batch {
                        let call = makeCall(.update) { $0.update = update }
                        let client = self.client
                        group.addTask {
                            do throws(AgentError) {
                                try await client.send(call, madeIn: epoch)
                                return (update, nil)
                            } catch {
                                return (update, error)
                            }
                        }
                    }
                    for await (update, error) in group {
                        retry = sent(update, error: error) || retry
                        progressed = progressed || error == nil
                    }
                }
                if retry {
                    // Part of the batch got through: the agent is there and answering, and what
                    // failed lost a connection (the calls pipelined behind a dropped one fail with
                    // it): the rest go again after the shortest pause, not a growing one.
                    if progressed { backoff = .milliseconds(50) }
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(2))
                } else {
                    backoff = .milliseconds(50)
                }
            }
        }
    }

    private func takeSendable() -> [Mesos_V1_Executor_Call.Update] {
        guard executorLifecycle.isSubscribed else { return [] }
        return ledger.takeSendable(limit: 32)
    }

    /// Returns true when the update should be retried after a pause.
    private func sent(_ update: Mesos_V1_Executor_Call.Update, error: AgentError?) -> Bool {
        let uuid = [UInt8](update.status.uuid)
        guard let error else {
            ledger.accepted(uuid: uuid)
            return false
        }
        if error.isRetryable {
            logger.debug("update not accepted yet, will retry", metadata: ["error": "\(error)"])
            ledger.retry(uuid: uuid)
            return true
        }
        logger.error(
            "agent refused a status update; it is dropped",
            metadata: ["task": "\(update.status.taskID.value)", "error": "\(error)"])
        _ = ledger.rejected(uuid: uuid)
        workChanged()
        return false
    }

    func makeCall(
        _ type: Mesos_V1_Executor_Call.TypeEnum, _ fill: (inout Mesos_V1_Executor_Call) -> Void = { _ in }
    ) -> Mesos_V1_Executor_Call {
        Self.call(type, of: configuration, fill)
    }

    /// A call of this executor (its framework and executor ids set), filled by `fill`.
    static func call(
        _ type: Mesos_V1_Executor_Call.TypeEnum, of configuration: ExecutorConfiguration,
        _ fill: (inout Mesos_V1_Executor_Call) -> Void = { _ in }
    ) -> Mesos_V1_Executor_Call {
        var call = Mesos_V1_Executor_Call()
        call.type = type
        call.frameworkID.value = configuration.frameworkID
        call.executorID.value = configuration.executorID
        fill(&call)
        return call
    }

    /// Sends an executor MESSAGE to the framework, retrying while the agent is recovering or
    /// unreachable (with backoff, until the executor finishes). Messages are not acknowledged by
    /// Mesos, so a message the agent refuses for good is logged and dropped.
    func deliverMessage(_ data: [UInt8]) async {
        let call = makeCall(.message) { $0.message.data = .init(data) }
        var backoff = Duration.milliseconds(50)
        while !Task.isCancelled && !finished {
            do {
                try await client.send(call)
                return
            } catch  where error.isRetryable {
                logger.debug("executor message not accepted yet, will retry", metadata: ["error": "\(error)"])
            } catch {
                logger.error("agent refused an executor message; it is dropped", metadata: ["error": "\(error)"])
                return
            }
            try? await Task.sleep(for: backoff)
            backoff = min(backoff * 2, .seconds(2))
        }
    }

    /// Sends a task's progress MESSAGE once: a lost one is superseded by the next.
    func deliverProgress(_ data: [UInt8]) async {
        guard !finished else { return }
        do {
            try await client.send(makeCall(.message) { $0.message.data = .init(data) })
        } catch {
            logger.debug("a progress message was not accepted; it is dropped", metadata: ["error": "\(error)"])
        }
    }

    func heartbeatLoop() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: heartbeatInterval)
            } catch {
                return
            }
            guard executorLifecycle.isSubscribed else { continue }
            do {
                try await client.send(makeCall(.heartbeat))
            } catch {
                logger.debug("heartbeat failed", metadata: ["error": "\(error)"])
            }
        }
    }

    static func uuidV4() -> Data {
        // One getrandom(2) for the 16 bytes (getentropy), where the system generator makes one
        // call per 64 bits.
        var bytes = [UInt8](repeating: 0, count: 16)
        if bytes.withUnsafeMutableBytes({ getentropy($0.baseAddress, 16) }) != 0 {
            var generator = SystemRandomNumberGenerator()
            bytes = withUnsafeBytes(of: (generator.next() as UInt64, generator.next() as UInt64)) { Array($0) }
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x40
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        return Data(bytes)
    }

    static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
