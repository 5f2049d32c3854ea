import Foundation
import MesosProto
import PackageFetch
import SparkExecutor
import Testing

struct SparkSettingsTests {
    private func info(_ json: String?, cpus: Double? = nil) -> Mesos_V1_ExecutorInfo {
        var info = Mesos_V1_ExecutorInfo()
        info.executorID.value = "e"
        if let json { info.data = .init(json.utf8) }
        if let cpus {
            var resource = Mesos_V1_Resource()
            resource.name = "cpus"
            resource.type = .scalar
            resource.scalar.value = cpus
            info.resources = [resource]
        }
        return info
    }

    /// Value secrets go where `.envkeys` and `.filenames` say, position by position; a list of the
    /// wrong length, a bad name or a path leaving the sandbox is refused naming the key, never the value.
    @Test func secretsArePlacedByPositionAndBadListsAreRefusedWithoutTheirValues() throws {
        let prefix = "spark.mesos.executor.secret."
        func settings(_ properties: [String: String]) throws -> SparkSettings {
            try SparkSettings(executorInfo: info(nil), commandLine: properties)
        }
        let placed = try settings([
            prefix + "values": "s3cr3tA,s3cr3tB", prefix + "envkeys": "A,B", prefix + "filenames": "s/a,b",
        ])
        #expect(placed.secretEnvironment == ["A": "s3cr3tA", "B": "s3cr3tB"])
        #expect(placed.secretFiles == ["s/a": "s3cr3tA", "b": "s3cr3tB"])
        let refused: [([String: String], String)] = [
            ([prefix + "values": "s3cr3tA,s3cr3tB", prefix + "envkeys": "A"], prefix + "envkeys"),
            ([prefix + "values": "s3cr3tA", prefix + "envkeys": "A=B"], prefix + "envkeys"),
            ([prefix + "values": "s3cr3tA", prefix + "envkeys": ""], prefix + "envkeys"),
            ([prefix + "values": "s3cr3tA,s3cr3tB", prefix + "filenames": "a"], prefix + "filenames"),
            ([prefix + "values": "s3cr3tA", prefix + "filenames": "../up"], prefix + "filenames"),
            ([prefix + "values": "s3cr3tA", prefix + "filenames": "/etc/x"], prefix + "filenames"),
            ([prefix + "values": "s3cr3tA", prefix + "filenames": "a//b"], prefix + "filenames"),
            ([prefix + "values": "s3cr3tA"], prefix + "values"),
            ([prefix + "envkeys": "A"], prefix + "envkeys"),
            ([prefix + "values": "s3cr3tA\u{0}x", prefix + "envkeys": "A"], prefix + "values"),
        ]
        for (properties, key) in refused {
            if let error = #expect(throws: (any Error).self, "\(properties)", performing: { try settings(properties) })
            {
                let text = "\(error)"
                #expect(text.contains(key), "\(text)")
                #expect(!text.contains("s3cr3tA"), "the message shows a secret: \(text)")
            }
        }
    }

    /// A NUL would cut a path, a program argument or an environment value made from a property:
    /// any property holding one is refused, naming it with the NUL shown as `\0`.
    @Test func aPropertyHoldingANULIsRefused() throws {
        for (properties, says) in [
            (["spark.mesos.executor.worker": "/opt/w\u{0}x"], #"spark.mesos.executor.worker='/opt/w\0x'"#),
            (["spark.executorEnv.A\u{0}": "v"], #"spark.executorEnv.A\0='v'"#),
        ] {
            let error = #expect(throws: SettingsError.self) {
                try SparkSettings(executorInfo: info(nil), commandLine: properties)
            }
            #expect(error?.description == says + " is malformed: expected text without a NUL character")
        }
    }

    @Test func defaultsFollowSpark3() throws {
        let settings = try SparkSettings(executorInfo: info(nil), commandLine: [:])
        #expect(settings.coarse)
        #expect(settings.cores == 1)
        #expect(settings.workerPath == nil)
        #expect(settings.cacheEnabled)
        #expect(settings.cacheLink == .symlink)
        #expect(settings.forkServer)
        let off = try SparkSettings(
            executorInfo: info(
                #"{"spark.mesos.executor.worker.forkServer":"false","spark.mesos.executor.cache.link":"HardLinks"}"#),
            commandLine: [:])
        #expect(!off.forkServer)
        #expect(off.cacheLink == .hardLinks)
        #expect(off.unknownKeys == [])
    }

    @Test func precedenceCommandLineThenExecutorDataThenEnvironment() throws {
        let json =
            #"{"spark.executor.uri":"http://data/spark.tgz","spark.mesos.coarse":"false","spark.executor.cores":"2"}"#
        let settings = try SparkSettings(
            executorInfo: info(json), commandLine: ["spark.executor.cores": "6"],
            sparkExecutorURI: "http://env/spark.tgz")
        #expect(settings.properties["spark.executor.uri"] == "http://data/spark.tgz")
        #expect(!settings.coarse)
        #expect(settings.cores == 6)
        let fromEnvironment = try SparkSettings(
            executorInfo: info("{}"), commandLine: [:], sparkExecutorURI: "http://env/spark.tgz")
        #expect(fromEnvironment.properties["spark.executor.uri"] == "http://env/spark.tgz")
    }

    /// `spark.mesos.executor.miniTasks.maxHeldSize` is a JVM-style size (no unit: MiB), 512 MiB
    /// by default; anything else is a configuration error naming the property.
    @Test func miniTaskHeldSizeIsAJVMSizeOfAtLeastOneMiB() throws {
        let key = "spark.mesos.executor.miniTasks.maxHeldSize"
        #expect(try SparkSettings(executorInfo: info(nil), commandLine: [:]).miniTaskHeldBytes == 512 << 20)
        for (text, bytes) in [("256m", 256 << 20), ("2g", 2 << 30), ("64", 64 << 20), ("1024k", 1 << 20)] {
            #expect(try SparkSettings(executorInfo: info(nil), commandLine: [key: text]).miniTaskHeldBytes == bytes)
        }
        for text in ["0", "512k", "lots", "-1m", ""] {
            #expect(throws: SettingsError.self, "\(text)") {
                try SparkSettings(executorInfo: info(nil), commandLine: [key: text])
            }
        }
    }

    @Test func coresFromCpusPlusExtraCores() throws {
        let settings = try SparkSettings(
            executorInfo: info(#"{"spark.mesos.extra.cores":"1"}"#, cpus: 2.5), commandLine: [:])
        #expect(settings.cores == 4)
    }

    /// The ExecutorInfo's `disk` (MB, summed over its entries) caps what the fetch puts into the sandbox.
    @Test func diskResourceIsTheFetchLimitInBytes() throws {
        var executorInfo = info(nil)
        #expect(try SparkSettings(executorInfo: executorInfo, commandLine: [:]).diskLimitBytes == nil)
        for megabytes in [1024.0, 0.5] {
            var resource = Mesos_V1_Resource()
            resource.name = "disk"
            resource.type = .scalar
            resource.scalar.value = megabytes
            executorInfo.resources.append(resource)
        }
        let settings = try SparkSettings(executorInfo: executorInfo, commandLine: [:])
        #expect(settings.diskLimitBytes == Int64(1024 * 1_048_576 + 524_288))
    }

    /// Coarse workers share the executor's memory as Spark sizes it: spark.executor.memory plus the
    /// overhead (spark.mesos.executor.memoryOverhead, else max(384 MiB, 10 %)), else the ExecutorInfo's mem.
    @Test func workerPoolMemoryFollowsSparksExecutorSizing() throws {
        func memory(_ json: String, mem: Double? = nil) throws -> UInt64? {
            var executorInfo = info(json)
            if let mem {
                var resource = Mesos_V1_Resource()
                resource.name = "mem"
                resource.type = .scalar
                resource.scalar.value = mem
                executorInfo.resources.append(resource)
            }
            return try SparkSettings(executorInfo: executorInfo, commandLine: [:])
                .workerPoolMemoryBytes
        }
        let mib: UInt64 = 1_048_576
        #expect(try memory(#"{"spark.executor.memory":"4g"}"#) == (4096 + 409) * mib)
        #expect(try memory(#"{"spark.executor.memory":"1024"}"#) == (1024 + 384) * mib)
        #expect(
            try memory(#"{"spark.executor.memory":"2g","spark.mesos.executor.memoryOverhead":"100"}"#) == 2148 * mib)
        #expect(
            try memory(#"{"spark.executor.memory":"10g","spark.executor.memoryOverheadFactor":"0.2"}"#)
                == (10240 + 2048) * mib)
        #expect(try memory("{}", mem: 1500) == 1500 * mib)
        #expect(try memory("{}") == nil)
        if let error = #expect(
            throws: (any Error).self, performing: { try memory(#"{"spark.executor.memory":"lots"}"#) })
        {
            #expect("\(error)" == "spark.executor.memory='lots' is malformed: expected a size such as 4g or 512m")
        }
    }

    @Test func executorEnvAndUnknownKeys() throws {
        let json = #"{"spark.executorEnv.JAVA_HOME":"/opt/jdk","spark.driver.memory":"4g","spark.app.id":7}"#
        let settings = try SparkSettings(executorInfo: info(json), commandLine: [:])
        #expect(settings.taskEnvironment == ["JAVA_HOME": "/opt/jdk"])
        #expect(settings.unknownKeys == ["spark.app.id", "spark.driver.memory"])
        #expect(settings.properties["spark.app.id"] == "7")
    }

    @Test func malformedValuesNameKeyAndValue() {
        let cases: [(String, String)] = [
            (#"{"spark.mesos.coarse":"yes"}"#, "spark.mesos.coarse='yes' is malformed: expected true or false"),
            (
                #"{"spark.mesos.executor.worker.forkServer":"1"}"#,
                "spark.mesos.executor.worker.forkServer='1' is malformed: expected true or false"
            ),
            (
                #"{"spark.mesos.executor.cache.link":"copy"}"#,
                "spark.mesos.executor.cache.link='copy' is malformed: expected symlink or hardlinks"
            ),
            (
                #"{"spark.executor.cores":"0"}"#,
                "spark.executor.cores='0' is malformed: expected a whole number of at least 1"
            ),
            (
                #"{"spark.mesos.extra.cores":"-1"}"#,
                "spark.mesos.extra.cores='-1' is malformed: expected a whole number of at least 0"
            ),
            (
                #"{"spark.executor.cores":["2"]}"#,
                #"spark.executor.cores='["2"]' is malformed: expected a string value"#
            ),
            (
                "not json",
                "ExecutorInfo.data='not json' is malformed: expected a JSON object of Spark properties (invalid literal at byte 0)"
            ),
            ("[1]", "ExecutorInfo.data='[1]' is malformed: expected a JSON object of Spark properties"),
        ]
        for (json, expected) in cases {
            if let error = #expect(
                throws: (any Error).self, "\(json)",
                performing: { try SparkSettings(executorInfo: info(json), commandLine: [:]) })
            {
                #expect("\(error)" == expected)
            }
        }
    }

    @Test func confArguments() throws {
        #expect(try SparkSettings.parseConfArguments(["a=b", "spark.x=y=z"]) == ["a": "b", "spark.x": "y=z"])
        if let error = #expect(
            throws: (any Error).self, performing: { try SparkSettings.parseConfArguments(["novalue"]) })
        {
            #expect("\(error)" == "--conf='novalue' is malformed: expected key=value")
        }
    }
}
