import MesosProto
import SparkExecutor
import Testing

/// The flags a Mesos agent starts its command executor with, as this executor reads them.
struct CommandExecutorFlagsTests {
    /// `--task_environment` and `--task_command` as the agent writes them (stout's JSON of the
    /// protobuf: proto field names, enum names); flags that change nothing here are passed over.
    @Test func readsTheFlagsTheAgentWrites() throws {
        let flags = try CommandExecutorFlags.parse([
            "--launcher_dir=/usr/libexec/mesos",
            #"--task_environment={"variables":[{"name":"FROM_AGENT","type":"VALUE","value":"a b"},"#
                + #"{"name":"TOKEN","type":"SECRET","secret":{"type":"REFERENCE","reference":{"name":"/t"}}}]}"#,
            #"--task_command={"shell":false,"value":"/bin/echo","arguments":["echo","from","image"],"#
                + #""environment":{"variables":[{"name":"X","value":"1"}]}}"#,
            "--sandbox_directory=/mnt/mesos/sandbox",
            "--working_directory=/app",
            "positional",
        ])
        #expect(flags.taskEnvironment == ["FROM_AGENT": "a b"])
        let command = try #require(flags.taskCommand)
        #expect(!command.shell)
        #expect(command.value == "/bin/echo")
        #expect(command.arguments == ["echo", "from", "image"])
        #expect(command.environment.variables.map(\.name) == ["X"])
        #expect(flags.rootFilesystem == nil && flags.user == nil && flags.containerRequests.isEmpty)
        #expect(flags.refusal() == nil)
        #expect(try CommandExecutorFlags.parse(["--launcher_dir=/x", "--no_value"]) == CommandExecutorFlags())
    }

    @Test(arguments: [
        ("--task_environment={", "--task_environment"),
        (#"--task_environment={"variables":[{"value":"no name"}]}"#, "--task_environment"),
        (#"--task_command=["not", "an", "object"]"#, "--task_command"),
        ("--task_supplementary_groups=10,x", "--task_supplementary_groups"),
        ("--task_supplementary_groups=", "--task_supplementary_groups"),
    ])
    func aValueThatCannotBeReadIsAnErrorNamingTheFlag(_ argument: String, _ flag: String) {
        #expect {
            _ = try CommandExecutorFlags.parse([argument])
        } throws: { error in
            "\(error)".hasPrefix("\(flag)='") && "\(error)".contains("is malformed")
        }
    }

    /// What asks for a container this executor does not make is refused with what was asked.
    @Test func aContainerItDoesNotMakeIsRefusedWithWhatWasAsked() throws {
        let identity = { (userName: Optional("spark"), groups: Set<UInt32>([100, 1001])) }
        let image = try CommandExecutorFlags.parse(["--rootfs=/var/lib/mesos/provisioner/r1", "--user=nobody"])
        let imageRefusal = try #require(image.refusal(identity: identity))
        #expect(imageRefusal.contains("container image (the agent gave --rootfs=/var/lib/mesos/provisioner/r1)"))

        #expect(try CommandExecutorFlags.parse(["--user=spark"]).refusal(identity: identity) == nil)
        let otherUser = try #require(try CommandExecutorFlags.parse(["--user=nobody"]).refusal(identity: identity))
        #expect(otherUser.contains("as user 'nobody' (--user)") && otherUser.contains("its own user 'spark'"))

        #expect(
            try CommandExecutorFlags.parse(["--task_supplementary_groups=1001,100"]).refusal(identity: identity) == nil)
        let groups = try #require(
            try CommandExecutorFlags.parse(["--task_supplementary_groups=100,7,8"]).refusal(identity: identity))
        #expect(groups.contains("groups 7, 8 (--task_supplementary_groups)"), "\(groups)")

        for flag in [
            #"--effective_capabilities={"capabilities":["NET_RAW"]}"#, "--bounding_capabilities={}",
            "--tty_slave_path=/dev/pts/3", #"--task_launch_info={"mounts":[]}"#,
        ] {
            let refusal = try #require(try CommandExecutorFlags.parse([flag]).refusal(identity: identity))
            let name = String(flag.prefix { $0 != "=" })
            #expect(refusal.contains("a container this executor does not make (\(name))"), "\(refusal)")
        }
    }

    /// No flag that needs the executor's identity: it is not looked up.
    @Test func theIdentityIsAskedOnlyWhenAFlagNeedsIt() throws {
        let flags = try CommandExecutorFlags.parse([#"--task_environment={"variables":[]}"#])
        #expect(
            flags.refusal(identity: {
                Issue.record("asked"); return (nil, [])
            }) == nil)
        let current = CommandExecutorFlags.currentIdentity()
        #expect(current.userName != nil)
        #expect(try CommandExecutorFlags.parse(["--user=\(current.userName ?? "")"]).refusal() == nil)
    }
}
