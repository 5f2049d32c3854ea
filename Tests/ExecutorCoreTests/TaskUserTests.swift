import ProcessSupervision
import SparkExecutor
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Who a command task runs as, decided from `CommandInfo.user`, the executor's own user and the
/// user database (given here, so that every case is tried whoever runs the tests).
struct TaskUserTests {
    private let spark = UserIdentity(name: "spark", uid: 1500, gid: 1500, groups: [1500, 27])
    private let root: (uid: UInt32, name: String?) = (0, "root")

    private func database(_ name: String) throws(ProcessError) -> UserIdentity? {
        name == "spark" ? spark : name == "alias" ? UserIdentity(name: "alias", uid: 0, gid: 0, groups: [0]) : nil
    }

    @Test func noUserOrTheExecutorsOwnRunsAsTheExecutor() throws {
        #expect(try TaskUser.resolve(nil, executor: root, lookUp: database) == nil)
        #expect(try TaskUser.resolve("", executor: root, lookUp: database) == nil)
        #expect(try TaskUser.resolve("root", executor: root, lookUp: database) == nil)
        // Another name for the executor's own user id.
        #expect(try TaskUser.resolve("alias", executor: root, lookUp: database) == nil)
        // A user the executor already is, whether or not it may switch.
        #expect(try TaskUser.resolve("spark", executor: (1500, "spark"), lookUp: database) == nil)
    }

    @Test func anotherUserIsSwitchedToByARootExecutor() throws {
        #expect(try TaskUser.resolve("spark", executor: root, lookUp: database) == spark)
        // Root without a name in the user database is still root.
        #expect(try TaskUser.resolve("spark", executor: (0, nil), lookUp: database) == spark)
    }

    @Test func anUnknownUserIsRefusedNamingIt() throws {
        let error = #expect(throws: TaskUserError.self) {
            try TaskUser.resolve("nosuchuser", executor: root, lookUp: database)
        }
        #expect(error?.description == "the task's user 'nosuchuser' (CommandInfo.user) does not exist on this agent")
        // A name of any length or content is looked up as it is and shown cut short.
        let long = #expect(throws: TaskUserError.self) {
            try TaskUser.resolve(String(repeating: "x", count: 10_000), executor: root, lookUp: database)
        }
        #expect(
            long?.description
                == "the task's user '\(String(repeating: "x", count: 64))…' (CommandInfo.user) does not exist on this agent"
        )
        #expect(try UserIdentity.lookUp("../etc/passwd") == nil)
    }

    @Test func anExecutorThatMayNotSwitchRefusesAnotherUser() {
        let error = #expect(throws: TaskUserError.self) {
            try TaskUser.resolve("spark", executor: (1000, "mesos"), lookUp: database)
        }
        #expect(
            error?.description.hasPrefix(
                "the task is to run as user 'spark' (CommandInfo.user), and this executor runs as 'mesos', which may not switch users"
            ) == true)
        let unnamed = #expect(throws: TaskUserError.self) {
            try TaskUser.resolve("spark", executor: (1000, nil), lookUp: database)
        }
        #expect(unnamed?.description.contains("runs as 'uid 1000'") == true)
    }

    @Test func theRealUserDatabaseIsRead() throws {
        let rootUser = try #require(try UserIdentity.lookUp("root"))
        #expect(rootUser.uid == 0 && rootUser.gid == 0 && rootUser.groups.contains(0))
        #expect(try UserIdentity.lookUp("no-such-user-sme") == nil)
        #expect(try UserIdentity.lookUp("") == nil)
        #expect(try UserIdentity.lookUp("bad\u{0}name") == nil)
    }

    /// Ids that are file names as they are name their directory; others get a hash of the id, so
    /// that ids differing only in characters a file name cannot hold, or only after their first
    /// 200 characters, never share a directory.
    @Test func everyTaskHasADirectoryOfItsOwn() {
        #expect(TaskAccount.directory(sandbox: "/s", taskID: "etl-7.a_b") == "/s/tasks/etl-7.a_b")
        let slash = TaskAccount.directory(sandbox: "/s", taskID: "a/b")
        #expect(slash == "/s/tasks/a_b-e620c3190468cf61")
        let space = TaskAccount.directory(sandbox: "/s", taskID: "a b")
        #expect(slash.hasPrefix("/s/tasks/a_b-") && slash.count == "/s/tasks/a_b-".count + 16)
        #expect(space.hasPrefix("/s/tasks/a_b-") && space != slash)
        #expect(slash != TaskAccount.directory(sandbox: "/s", taskID: "a_b"))
        #expect(TaskAccount.directory(sandbox: "/s", taskID: "..").hasPrefix("/s/tasks/_..-"))
        let long = String(repeating: "x", count: 200)
        let longer = [long + "1", long + "2"].map { TaskAccount.directory(sandbox: "/s", taskID: $0) }
        #expect(longer[0] != longer[1] && longer.allSatisfy { $0.hasPrefix("/s/tasks/\(long)-") })
        #expect(TaskAccount.directory(sandbox: "/s", taskID: long) == "/s/tasks/\(long)")
    }

    /// A directory that is there already (a file name two tasks share) is not given to a user.
    @Test func aDirectoryThatIsThereAlreadyIsNotGivenAway() throws {
        let me = UserIdentity(name: "me", uid: geteuid(), gid: getegid(), groups: [getegid()])
        var template = Array("/tmp/task-account-XXXXXX".utf8CString)
        let sandbox = try #require(mkdtemp(&template).map { String(cString: $0) })
        defer { _ = system("rm -rf '\(sandbox)'") }
        let directory = TaskAccount.directory(sandbox: sandbox, taskID: "t1")
        _ = try TaskAccount.make(for: me, directory: directory)
        let error = #expect(throws: TaskUserError.self) { try TaskAccount.make(for: me, directory: directory) }
        #expect(
            error?.description == "the task's directory \(directory) is there already: it is not given to another user")
    }
}
