public import ProcessSupervision
import SystemSupport

/// Who a command task runs as. A task that names a user (`CommandInfo.user`) other than the
/// executor's runs as that user, as Mesos's agent runs the tasks of its default executor (with
/// `--switch_user`, its default): it needs the executor to run as root, the user to exist, and it
/// gets a directory of its own to work in (``TaskAccount``). Standing in for Mesos's command
/// executor, the agent has already started the executor as the task's user, and the task's
/// `CommandInfo.user` is not looked at again, as there.
public enum TaskUser {
    /// The user `requested` names, when it is not the executor's own: nil runs the task as the
    /// executor. Throws why it cannot run as that user (no such user; the executor may not switch).
    public static func resolve(
        _ requested: String?, executor: (uid: UInt32, name: String?) = UserIdentity.current(),
        lookUp: (String) throws(ProcessError) -> UserIdentity? = UserIdentity.lookUp
    ) throws(TaskUserError) -> UserIdentity? {
        guard let requested, !requested.isEmpty, requested != executor.name else { return nil }
        // As messages show it: a name from a task is not repeated at any length.
        let shown = requested.count > 64 ? requested.prefix(64) + "…" : requested
        let identity: UserIdentity?
        do {
            identity = try lookUp(requested)
        } catch {
            throw TaskUserError("cannot look up the task's user '\(shown)' (CommandInfo.user): \(error)")
        }
        guard let identity else {
            throw TaskUserError("the task's user '\(shown)' (CommandInfo.user) does not exist on this agent")
        }
        if identity.uid == executor.uid { return nil }
        guard executor.uid == 0 else {
            throw TaskUserError(
                "the task is to run as user '\(shown)' (CommandInfo.user), and this executor runs as '"
                    + "\(executor.name ?? "uid \(executor.uid)")', which may not switch users: the agent starts "
                    + "the executor as root when the framework's user is root or the agent runs with --switch_user=false"
            )
        }
        return identity
    }
}

/// Why a task cannot run as the user it names.
public struct TaskUserError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Where and as whom a command task of another user runs: the task's directory in the sandbox
/// (`tasks/<task id>`, where its stdout and stderr are), owned by that user, is its working
/// directory and its `MESOS_SANDBOX`, as a task of Mesos's default executor works in a sandbox of
/// its own that the agent gives its user. The executor's sandbox stays the executor's.
public struct TaskAccount: Sendable, Equatable {
    public let user: UserIdentity
    public let directory: String

    public init(user: UserIdentity, directory: String) {
        self.user = user
        self.directory = directory
    }

    /// Makes the task's directory (if it is not there) and gives it to `user`.
    public static func open(for user: UserIdentity, directory: String) throws(TaskUserError) -> TaskAccount {
        if let failed = makeDirectories(atPath: directory) {
            throw TaskUserError("cannot make the task's directory: mkdir \(failed.path): \(errnoText(failed.errno))")
        }
        do {
            try user.takeOwnership(of: directory)
        } catch {
            throw TaskUserError("cannot give the task's directory to its user: \(error)")
        }
        return TaskAccount(user: user, directory: directory)
    }
}
