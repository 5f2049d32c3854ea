public import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

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
        _ requested: String?, executor: (uid: UInt32, name: String?) = TaskUser.executor,
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

    /// The executor's own user, looked up once.
    public static let executor = UserIdentity.current()
}

/// Why a task cannot run as the user it names.
public struct TaskUserError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Where and as whom a command task of another user runs: a directory of its own in the
/// sandbox's `tasks` (where its stdout and stderr are too), owned by that user, is its working
/// directory and its `MESOS_SANDBOX`, as a task of Mesos's default executor works in a sandbox of
/// its own that the agent gives its user. The executor's sandbox stays the executor's.
public struct TaskAccount: Sendable, Equatable {
    public let user: UserIdentity
    public let directory: String

    /// The task's directory: `tasks/<task id>` as every task's, the id made a safe file name
    /// that no other id shares (``StandardStreamFiles/safeName(_:)``), so no two users share one.
    public static func directory(sandbox: String, taskID: String) -> String {
        sandbox + "/" + StandardStreamFiles.taskDirectory(taskID)
    }

    /// Makes the task's directory, which must be new (whatever a directory already there held
    /// would become the user's). It stays the executor's until ``giveDirectory()``: what is fetched
    /// into it first is written where no process of the user can put anything in the way.
    ///
    /// Mesos's agent makes every sandbox 0750, closed to other users (`createSandboxDirectory`), so
    /// the task's user is let through the executor's sandbox by an ACL entry for it alone
    /// (`user:<uid>:--x`), or, where the file system keeps no ACLs, every other user is (`o+x`);
    /// `tasks` is passable to others and listable by none of them (`o+x`, others' `r` and `w`
    /// taken off): a user that passes can reach a directory whose name it knows, not list them.
    public static func make(for user: UserIdentity, directory: String) throws(TaskUserError) -> TaskAccount {
        let parent = String(directory[..<(directory.lastIndex(of: "/") ?? directory.startIndex)])
        if !parent.isEmpty, let failed = makeDirectories(atPath: parent) {
            throw TaskUserError("cannot make the task's directory: mkdir \(failed.path): \(errnoText(failed.errno))")
        }
        let sandbox = String(parent[..<(parent.lastIndex(of: "/") ?? parent.startIndex)])
        if !sandbox.isEmpty {
            let granted: Bool
            do {
                granted = try user.grantPassage(through: sandbox)
            } catch {
                throw TaskUserError("cannot let the task's user through \(sandbox): \(error)")
            }
            if !granted { try letOthersPass(sandbox, list: true) }
        }
        if !parent.isEmpty { try letOthersPass(parent, list: false) }
        // 0750, as Mesos makes sandboxes: once the user's, no other user's task can look in.
        guard mkdir(directory, 0o750) == 0 else {
            let code = errno
            throw TaskUserError(
                code == EEXIST
                    ? "the task's directory \(directory) is there already: it is not given to another user"
                    : "cannot make the task's directory: mkdir \(directory): \(errnoText(code))")
        }
        return TaskAccount(user: user, directory: directory)
    }

    /// Adds `o+x` to the directory at `path` (and, unless `list`, takes others' `r` and `w` off).
    private static func letOthersPass(_ path: String, list: Bool) throws(TaskUserError) {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw TaskUserError("cannot let the task's user through \(path): \(errnoText(errno))")
        }
        let mode = status.st_mode & 0o7777
        let wanted = (list ? mode : mode & ~0o006) | 0o001
        if wanted != mode, chmod(path, wanted) != 0 {
            throw TaskUserError("cannot let the task's user through \(path): \(errnoText(errno))")
        }
    }

    /// Gives the task's directory and all in it to its user.
    public func giveDirectory() throws(TaskUserError) {
        do {
            try user.takeOwnership(ofDirectory: directory)
        } catch {
            throw TaskUserError("cannot give the task's directory to its user: \(error)")
        }
    }
}
