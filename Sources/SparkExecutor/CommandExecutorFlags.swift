import MesosCodec
import ProcessSupervision
public import MesosProto

#if canImport(Glibc)
    import Glibc
#endif

/// What a Mesos agent tells its command executor on the command line (`--name=value`), read when
/// this executor stands in for it (`MESOS_HTTP_COMMAND_EXECUTOR=1`). The agent's isolators and
/// hooks hand a command task their part this way rather than through the `TaskInfo`: the
/// variables they give it (resolved secrets, an image's environment, a hook's variables), the
/// command an image's entrypoint makes of the task's, and what the task's container needs
/// besides (an image's root filesystem, capabilities, a TTY, mounts, groups).
///
/// The first two are honoured as Mesos's command executor honours them. The rest asks for a
/// container this executor does not make: a task that comes with any of them is not run on the
/// agent's own filesystem with more privileges than it was given, but fails at launch with what
/// was asked (``refusal``). Other flags (`--launcher_dir`, …) change nothing here.
public struct CommandExecutorFlags: Sendable, Equatable {
    /// `--task_environment`: variables for the task, between the executor's environment and the
    /// command's own (which win), as Mesos's command executor layers them. SECRET-typed entries are
    /// left out, as there.
    public var taskEnvironment: [String: String] = [:]
    /// `--task_command`: the command to run instead of the `TaskInfo`'s.
    public var taskCommand: Mesos_V1_CommandInfo?
    /// `--rootfs`: the root filesystem of the task's container image.
    public var rootFilesystem: String?
    /// `--user`: the user the task is to run as (given with `--rootfs`).
    public var user: String?
    /// `--task_supplementary_groups`: group ids the task must also be in.
    public var supplementaryGroups: [UInt32] = []
    /// Flags asking for what a container gives its task: capabilities, a TTY, mounts and the like.
    public var containerRequests: [String] = []

    public init() {}

    /// The flags the command executor reads that change what a task gets, from `arguments`
    /// (others are passed over). Throws for a value that cannot be read, naming the flag.
    public static func parse(_ arguments: [String]) throws(SettingsError) -> CommandExecutorFlags {
        var flags = CommandExecutorFlags()
        for argument in arguments {
            guard argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") else { continue }
            let name = String(argument[argument.index(argument.startIndex, offsetBy: 2)..<equals])
            let value = String(argument[argument.index(after: equals)...])
            switch name {
            case "task_environment":
                let environment: Mesos_V1_Environment
                do {
                    environment = try MesosJSON.decode(Mesos_V1_Environment.self, from: Array(value.utf8))
                } catch {
                    throw SettingsError(key: "--" + name, value: value, expected: "an Environment as JSON (\(error))")
                }
                for variable in environment.variables where variable.type != .secret {
                    flags.taskEnvironment[variable.name] = variable.value
                }
            case "task_command":
                do {
                    flags.taskCommand = try MesosJSON.decode(Mesos_V1_CommandInfo.self, from: Array(value.utf8))
                } catch {
                    throw SettingsError(key: "--" + name, value: value, expected: "a CommandInfo as JSON (\(error))")
                }
            case "rootfs":
                flags.rootFilesystem = value
            case "user":
                flags.user = value
            case "task_supplementary_groups":
                let ids = value.split(separator: ",", omittingEmptySubsequences: false).map { UInt32($0) }
                guard !value.isEmpty, ids.allSatisfy({ $0 != nil }) else {
                    throw SettingsError(
                        key: "--" + name, value: value, expected: "group ids separated by commas")
                }
                flags.supplementaryGroups = ids.compactMap { $0 }
            case "effective_capabilities", "bounding_capabilities", "tty_slave_path", "task_launch_info":
                flags.containerRequests.append(argument)
            default:
                continue
            }
        }
        return flags
    }

    /// Why a task launched with these flags cannot run here, or nil when it can. `identity` gives
    /// the executor's own user name and the group ids it is in (asked only when a flag needs them).
    public func refusal(
        identity: () -> (userName: String?, groups: Set<UInt32>) = CommandExecutorFlags.currentIdentity
    ) -> String? {
        if let rootFilesystem {
            return "the task has a container image (the agent gave --rootfs=\(rootFilesystem)): this executor "
                + "runs tasks on the agent's own filesystem, not in an image's; run tasks with images under "
                + "Mesos's own command executor"
        }
        guard user != nil || !supplementaryGroups.isEmpty || !containerRequests.isEmpty else { return nil }
        let (userName, groups) = identity()
        if let user, user != userName {
            return "the agent asked to run the task as user '\(user)' (--user), and this executor runs tasks as "
                + "its own user '\(userName ?? "?")'"
        }
        let missing = supplementaryGroups.filter { !groups.contains($0) }
        if !missing.isEmpty {
            return
                "the agent asked that the task also be in groups \(missing.map(String.init).joined(separator: ", ")) "
                + "(--task_supplementary_groups), which the executor is not in and does not add"
        }
        if let request = containerRequests.first {
            let name = request.prefix { $0 != "=" }
            return "the agent asked for a container this executor does not make (\(name)): "
                + "run this task under Mesos's own command executor"
        }
        return nil
    }

    /// The executor's own user name and the group ids it is in, for ``refusal(identity:)``.
    public static func currentIdentity() -> (userName: String?, groups: Set<UInt32>) {
        var groups: Set<UInt32> = [getegid()]
        let count = getgroups(0, nil)
        if count > 0 {
            var list = [gid_t](repeating: 0, count: Int(count))
            let filled = getgroups(count, &list)
            if filled > 0 { groups.formUnion(list.prefix(Int(filled))) }
        }
        return (UserIdentity.current().name, groups)
    }
}
