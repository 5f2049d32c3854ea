import CProcessSpawn
import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import ProcessSupervision
import SystemTestLock
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `CommandInfo.user` through the whole executor (run as root, as CI runs it): a command task of
/// another user runs as that user in a directory of its own, with its URIs and its checks; a
/// user the agent does not have fails the task at launch, naming it.
@Suite(.serialized, .systemTest, .enabled(if: geteuid() == 0, "switching users needs root"))
struct TaskUserEndToEndTests {
    /// A closure runs in the executor's workers, as the executor: one that asks for another user
    /// fails at launch saying so, and the next closure runs.
    @Test(.needsDemoWorker) func aClosureOfAnotherUserFailsAtLaunch() async throws {
        let properties = ["spark.mesos.coarse": "true", "spark.mesos.executor.worker": ClosureEndToEndTests.demoWorker]
        try await ExecutorUnderTest.run(encoding: .protobuf, properties: properties) { test in
            func closure(_ id: String) -> Mesos_V1_TaskInfo {
                test.agent.makeTask(id, data: Array(#"{"function":"echo","payload":"b2s="}"#.utf8))
            }
            var other = closure("as-nobody")
            other.command.user = "nobody"
            var own = closure("as-executor")
            own.command.user = "root"
            try await test.agent.launch(other)
            try await test.agent.launch(own)
            try await test.waitForStates(["as-nobody": .taskFailed, "as-executor": .taskFinished])
            let failed = try #require(await test.agent.state.updates(forTask: "as-nobody").last?.status)
            #expect(failed.reason == .containerLaunchFailed)
            #expect(
                failed.message
                    == "cannot run the task: it is to run as user 'nobody' (CommandInfo.user), and closure tasks "
                    + "run in the executor's workers, as the executor's user")
            let finished = try #require(await test.agent.state.updates(forTask: "as-executor").last?.status)
            #expect(String(decoding: finished.data, as: UTF8.self) == "ok")
            await assertNoViolations(test.agent)
            await test.agent.shutdown()
        }
    }

    @Test func aTaskRunsAsItsUserWithItsURIsAndChecks() async throws {
        let nobody = try #require(try UserIdentity.lookUp("nobody"))
        for encoding in WireEncoding.allCases {
            try await ExecutorUnderTest.run(encoding: encoding, cgroups: ExecutorUnderTest.cgroupsUsable) { test in
                // As Mesos's agent makes sandboxes (createSandboxDirectory): closed to other users.
                try #require(chmod(test.sandbox, 0o750) == 0)
                let source = test.path("published.txt")
                try "fetched\n".write(toFile: source, atomically: true, encoding: .utf8)
                var task = test.task(
                    "as-nobody",
                    "id -u; id -G; pwd; echo $MESOS_SANDBOX; cat data.txt; echo mine > mine; "
                        + "until [ -e checked ]; do sleep 0.05; done")
                task.command.user = "nobody"
                var uri = Mesos_V1_CommandInfo.URI()
                uri.value = await test.agent.publish(file: source, as: "published.txt")
                uri.extract = false
                uri.outputFile = "data.txt"
                task.command.uris = [uri]
                // The task ends once its health check has run as the task does (as its user, in its
                // directory) and left a file there, which is then the user's.
                task.healthCheck.type = .command
                task.healthCheck.command.value =
                    "test \"$(id -u)\" = \(nobody.uid) && test \"$PWD\" = \"$MESOS_SANDBOX\" && touch checked"
                task.healthCheck.delaySeconds = 0
                task.healthCheck.gracePeriodSeconds = 0
                task.healthCheck.intervalSeconds = 0.1
                task.healthCheck.timeoutSeconds = 60
                task.healthCheck.consecutiveFailures = 3

                var stranger = test.task("stranger", "touch \(test.path("stranger-ran"))")
                stranger.command.user = "no-such-user-sme"
                // A local file only the executor may read is not fetched for another user.
                let secret = test.path("secret.txt")
                try "root's\n".write(toFile: secret, atomically: true, encoding: .utf8)
                try #require(chmod(secret, 0o600) == 0)
                var peeker = test.task("peeker", "touch peeked")
                peeker.command.user = "nobody"
                var secretURI = Mesos_V1_CommandInfo.URI()
                secretURI.value = "file://" + secret
                peeker.command.uris = [secretURI]

                try await test.agent.launch(task)
                try await test.agent.launch(stranger)
                try await test.agent.launch(peeker)
                try await test.waitForStates([
                    "as-nobody": .taskFinished, "stranger": .taskFailed, "peeker": .taskFailed,
                ])
                let health = await test.agent.state.updates(forTask: "as-nobody").filter(\.status.hasHealthy)
                #expect(health.allSatisfy { $0.status.healthy }, "\(encoding)")

                let directory = test.path("tasks/as-nobody")
                let groups = nobody.groups.map(String.init).joined(separator: " ")
                let stdout = (try? String(contentsOfFile: directory + "/stdout", encoding: .utf8)) ?? ""
                #expect(
                    stdout == "\(nobody.uid)\n\(groups)\n\(directory)\n\(directory)\nfetched\n",
                    "\(encoding)")
                // What the task made is its own; a file linked from the fetch cache (read-only for
                // every task) stays the executor's, and the task could read it.
                var status = stat()
                #expect(stat(directory + "/mine", &status) == 0 && status.st_uid == nobody.uid)
                #expect(stat(directory + "/checked", &status) == 0 && status.st_uid == nobody.uid)
                #expect(stat(test.sandbox, &status) == 0 && status.st_uid == 0, "the sandbox stays the executor's")
                // The task's user alone passes through it (an ACL entry), or, where the file system
                // keeps no ACLs, every user does (`o+x`).
                let daemon = try #require(try UserIdentity.lookUp("daemon"))
                let strangerPasses = daemon.open(test.sandbox + "/tasks", flags: __O_PATH | O_CLOEXEC) >= 0
                #expect(status.st_mode & 0o777 == (strangerPasses ? 0o751 : 0o750))
                let hasACL = getxattr(test.sandbox, "system.posix_acl_access", nil, 0) > 0
                #expect(hasACL != strangerPasses, "with an ACL only the task's user passes through the sandbox")
                #expect(stat(directory, &status) == 0 && status.st_mode & 0o777 == 0o750)

                let failed = try #require(await test.agent.state.updates(forTask: "stranger").last?.status)
                #expect(failed.reason == .containerLaunchFailed)
                #expect(
                    failed.message
                        == "cannot run the task: the task's user 'no-such-user-sme' (CommandInfo.user) does not exist on this agent"
                )
                #expect(access(test.path("stranger-ran"), F_OK) != 0)
                let peeked = try #require(await test.agent.state.updates(forTask: "peeker").last?.status)
                #expect(peeked.reason == .containerLaunchFailed)
                #expect(
                    peeked.message
                        == "Failed to fetch the task's URIs: cannot fetch file://\(secret): cannot open '\(secret)' as "
                        + "user nobody: Permission denied", "\(encoding)")
                #expect(access(test.path("tasks/peeker/secret.txt"), F_OK) != 0)
                #expect(access(test.path("tasks/peeker/peeked"), F_OK) != 0)
                await assertNoViolations(test.agent)
                await test.agent.shutdown()
            }
        }
    }
}
