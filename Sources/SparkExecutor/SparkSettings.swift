import MesosCodec
public import MesosProto
public import PackageFetch
public import ProcessSupervision
import WorkerPool

/// The executor's Spark configuration, from Spark's own property names.
///
/// Sources, highest precedence first:
/// 1. `--conf key=value` arguments of the executor command;
/// 2. `ExecutorInfo.data`: a UTF-8 JSON object of string → string properties;
/// 3. `SPARK_EXECUTOR_URI` (read with the rest of the environment into `ExecutorConfiguration`) for
///    `spark.executor.uri`;
/// 4. defaults (`spark.mesos.coarse` is true, as in Spark 3).
public struct SparkSettings: Sendable, Equatable {
    /// Every property after merging, known or not.
    public var properties: [String: String]
    /// Coarse mode: long-lived workers reused across tasks. Fine mode: a fresh worker per task.
    public var coarse: Bool
    /// Worker slots: `spark.executor.cores` (else the executor's `cpus`, at least 1) plus `spark.mesos.extra.cores`.
    public var cores: Int
    /// The worker program: a path inside the package (or absolute).
    public var workerPath: String?
    /// `spark.executorEnv.NAME=value` entries, exported to every task and worker.
    public var taskEnvironment: [String: String]
    /// Results larger than this go to a file in the sandbox instead of `TaskStatus.data`.
    public var maxResultBytesInStatus: Int
    /// Whether package fetches use the shared on-disk cache.
    public var cacheEnabled: Bool
    /// How a cached archive is put into the sandbox (`spark.mesos.executor.cache.link`: `symlink`,
    /// the default, or `hardlinks` for a private tree tasks may add files to).
    public var cacheLink: CacheLink
    /// Fine mode: fork fresh workers from one warm instance of the worker program
    /// (`spark.mesos.executor.worker.forkServer`, default true).
    public var forkServer: Bool
    /// The memory coarse-mode workers share: `spark.executor.memory` plus the overhead
    /// (`spark.mesos.executor.memoryOverhead`, else max(384 MiB, `spark.executor.memoryOverheadFactor`
    /// (0.10) × memory)), as Spark sizes the executor; else the ExecutorInfo's `mem`; else no limit.
    public var workerPoolMemoryBytes: UInt64?
    /// The ExecutorInfo's `cpus`, when given.
    public var executorCPUs: Double?
    /// The ExecutorInfo's `disk` (MB, as Mesos counts it) in bytes, when given: the most the fetched
    /// files may take in the sandbox.
    public var diskLimitBytes: Int64?
    /// Value secrets for the environment (`spark.mesos.executor.secret.values` with `.envkeys`).
    public var secretEnvironment: [String: String] = [:]
    /// Value secrets for files in the sandbox (`.values` with `.filenames`): relative path → content.
    public var secretFiles: [String: String] = [:]
    /// `spark.executor.logs.rolling.maxSize` (bytes, or a size such as 10MB), nil when unset.
    public var logMaximumFileBytes: Int?
    /// `spark.executor.logs.rolling.maxRetainedFiles`, nil when unset.
    public var logRotatedFiles: Int?
    /// The most memory mini-tasks waiting for their results may take in the executor
    /// (`spark.mesos.executor.miniTasks.maxHeldSize`, default 512 MiB); beyond it they end LOST.
    public var miniTaskHeldBytes: Int = WorkerPoolConfiguration.defaultMaximumHeldMiniTaskBytes

    /// The keys this executor reads; anything else is ignored (and logged at debug level).
    public static let knownKeys: Set<String> = [
        "spark.executor.uri", "spark.mesos.uris", "spark.mesos.executor.home", "spark.mesos.coarse",
        "spark.executor.cores", "spark.mesos.extra.cores", "spark.mesos.executor.worker",
        "spark.mesos.executor.maxResultBytesInStatus", "spark.mesos.executor.cache.enabled",
        "spark.mesos.executor.cache.link",
        "spark.mesos.fetcherCache.enable", "spark.mesos.executor.worker.forkServer", "spark.executor.memory",
        "spark.mesos.executor.memoryOverhead", "spark.executor.memoryOverheadFactor",
        "spark.mesos.executor.secret.names", "spark.mesos.executor.secret.values",
        "spark.mesos.executor.secret.envkeys", "spark.mesos.executor.secret.filenames",
        "spark.executor.logs.rolling.maxSize", "spark.executor.logs.rolling.maxRetainedFiles",
        "spark.mesos.executor.miniTasks.maxHeldSize",
    ]

    /// The default size limit of a result carried in `TaskStatus.data` (agents checkpoint every update).
    public static let defaultMaxResultBytesInStatus = 64 * 1024

    /// Parses `--conf key=value` arguments (the value may contain `=`).
    public static func parseConfArguments(_ arguments: [String]) throws(SettingsError) -> [String: String] {
        var result: [String: String] = [:]
        for argument in arguments {
            guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else {
                throw SettingsError(key: "--conf", value: argument, expected: "key=value")
            }
            result[String(argument[..<equals])] = String(argument[argument.index(after: equals)...])
        }
        return result
    }

    /// Reads `ExecutorInfo.data` as a JSON object of properties. Empty data means no properties.
    public static func properties(fromExecutorData data: some Collection<UInt8>) throws(SettingsError) -> [String:
        String]
    {
        guard !data.isEmpty else { return [:] }
        let document: JSONValue
        do {
            document = try JSONValue.parse(data)
        } catch {
            throw SettingsError(
                key: "ExecutorInfo.data", value: String(decoding: data.prefix(80), as: UTF8.self),
                expected: "a JSON object of Spark properties (\(error.detail))")
        }
        guard case .object(let members) = document else {
            throw SettingsError(
                key: "ExecutorInfo.data", value: String(decoding: data.prefix(80), as: UTF8.self),
                expected: "a JSON object of Spark properties")
        }
        var result: [String: String] = [:]
        for member in members {
            switch member.value {
            case .string(let text): result[member.key] = text
            case .number(let text): result[member.key] = text
            case .bool(let flag): result[member.key] = flag ? "true" : "false"
            case .null: continue
            case .array, .object:
                throw SettingsError(
                    key: member.key, value: String(decoding: member.value.serialized(), as: UTF8.self),
                    expected: "a string value")
            }
        }
        return result
    }

    /// - Parameter sparkExecutorURI: `SPARK_EXECUTOR_URI`, the package when no property names one.
    public init(
        executorInfo: Mesos_V1_ExecutorInfo?, commandLine: [String: String], sparkExecutorURI: String? = nil
    ) throws(SettingsError) {
        var merged: [String: String] = [:]
        if let uri = sparkExecutorURI, !uri.isEmpty { merged["spark.executor.uri"] = uri }
        if let executorInfo, executorInfo.hasData {
            for (key, value) in try Self.properties(fromExecutorData: executorInfo.data) { merged[key] = value }
        }
        for (key, value) in commandLine { merged[key] = value }
        // A NUL would cut a path, a program argument or an environment value made from it.
        for key in merged.keys.sorted() where key.utf8.contains(0) || merged[key]!.utf8.contains(0) {
            func shown(_ text: String) -> String {
                text.unicodeScalars.map { $0 == "\u{0}" ? "\\0" : String($0) }.joined()
            }
            throw SettingsError(
                key: shown(key), value: key.contains("secret") ? "(not shown)" : shown(merged[key]!),
                expected: "text without a NUL character")
        }
        properties = merged

        func bool(_ key: String, default fallback: Bool) throws(SettingsError) -> Bool {
            guard let text = merged[key] else { return fallback }
            switch text.lowercased() {
            case "true": return true
            case "false": return false
            default: throw SettingsError(key: key, value: text, expected: "true or false")
            }
        }
        func count(_ key: String, minimum: Int) throws(SettingsError) -> Int? {
            guard let text = merged[key] else { return nil }
            guard let value = Int(text), value >= minimum else {
                throw SettingsError(key: key, value: text, expected: "a whole number of at least \(minimum)")
            }
            return value
        }

        coarse = try bool("spark.mesos.coarse", default: true)
        cacheEnabled = try bool("spark.mesos.executor.cache.enabled", default: true)
        if let text = merged["spark.mesos.executor.cache.link"] {
            guard let link = CacheLink(rawValue: text.lowercased()) else {
                throw SettingsError(
                    key: "spark.mesos.executor.cache.link", value: text, expected: "symlink or hardlinks")
            }
            cacheLink = link
        } else {
            cacheLink = .symlink
        }
        forkServer = try bool("spark.mesos.executor.worker.forkServer", default: true)
        _ = try bool("spark.mesos.fetcherCache.enable", default: false)
        let cpus = executorInfo?.resources.first { $0.name == "cpus" && $0.hasScalar }.map {
            max(1, Int($0.scalar.value.rounded(.up)))
        }
        cores =
            try (count("spark.executor.cores", minimum: 1) ?? cpus ?? 1)
            + (count("spark.mesos.extra.cores", minimum: 0) ?? 0)
        workerPath = merged["spark.mesos.executor.worker"].flatMap { $0.isEmpty ? nil : $0 }
        maxResultBytesInStatus =
            try count("spark.mesos.executor.maxResultBytesInStatus", minimum: 0) ?? Self.defaultMaxResultBytesInStatus
        var taskEnvironment: [String: String] = [:]
        for (key, value) in merged where key.hasPrefix("spark.executorEnv.") {
            let name = String(key.dropFirst("spark.executorEnv.".count))
            // A NUL is refused with every property above.
            guard !name.isEmpty, !name.contains("=") else {
                throw SettingsError(
                    key: key, value: value, expected: "an environment variable name after spark.executorEnv.")
            }
            taskEnvironment[name] = value
        }
        self.taskEnvironment = taskEnvironment
        (secretEnvironment, secretFiles) = try Self.secrets(merged)

        func scalar(_ name: String) -> Double? {
            let values = (executorInfo?.resources ?? []).filter { $0.name == name && $0.hasScalar }.map(\.scalar.value)
            return values.isEmpty ? nil : values.reduce(0, +)
        }
        executorCPUs = scalar("cpus")
        diskLimitBytes = scalar("disk").map { Int64(($0 * 1_048_576).rounded(.down)) }
        if let text = merged["spark.executor.memory"] {
            guard let memory = Self.mebibytes(text) else {
                throw SettingsError(key: "spark.executor.memory", value: text, expected: "a size such as 4g or 512m")
            }
            var overhead: Double
            if let text = merged["spark.mesos.executor.memoryOverhead"] {
                guard let value = Self.mebibytes(text) else {
                    throw SettingsError(
                        key: "spark.mesos.executor.memoryOverhead", value: text, expected: "a size in MiB such as 512")
                }
                overhead = value
            } else {
                var factor = 0.10
                if let text = merged["spark.executor.memoryOverheadFactor"] {
                    guard let value = Double(text), value >= 0, value.isFinite else {
                        throw SettingsError(
                            key: "spark.executor.memoryOverheadFactor", value: text, expected: "a fraction such as 0.1")
                    }
                    factor = value
                }
                overhead = max(384, (factor * memory).rounded(.down))
            }
            workerPoolMemoryBytes = UInt64((memory + overhead) * 1_048_576)
        } else {
            workerPoolMemoryBytes = scalar("mem").map { UInt64($0) * 1_048_576 }
        }
        if let text = merged["spark.executor.logs.rolling.maxSize"] {
            guard let bytes = LogRotation.parseSize(text), bytes >= LogRotation.minimumFileBytes else {
                throw SettingsError(
                    key: "spark.executor.logs.rolling.maxSize", value: text,
                    expected: "a size of at least 4096 bytes, such as 10485760 or 10MB")
            }
            logMaximumFileBytes = bytes
        }
        if let files = try count("spark.executor.logs.rolling.maxRetainedFiles", minimum: 0) {
            guard files <= 1000 else {
                throw SettingsError(
                    key: "spark.executor.logs.rolling.maxRetainedFiles", value: String(files),
                    expected: "a count from 0 to 1000")
            }
            logRotatedFiles = files
        }
        if let text = merged["spark.mesos.executor.miniTasks.maxHeldSize"] {
            guard let mebibytes = Self.mebibytes(text), mebibytes >= 1, mebibytes <= 1_073_741_824 else {
                throw SettingsError(
                    key: "spark.mesos.executor.miniTasks.maxHeldSize", value: text,
                    expected: "a size of at least 1 MiB, such as 512m or 2g (no unit: MiB)")
            }
            miniTaskHeldBytes = Int(mebibytes * 1_048_576)
        }
    }

    /// Spark's executor secrets: `spark.mesos.executor.secret.values` (comma-separated) paired with
    /// `.envkeys` (environment variables) and/or `.filenames` (files in the sandbox). References
    /// (`.names`) are resolved by an agent's secret resolver, which an executor cannot reach. Error
    /// messages never carry a secret's value.
    static func secrets(_ merged: [String: String]) throws(SettingsError) -> ([String: String], [String: String]) {
        let prefix = "spark.mesos.executor.secret."
        func list(_ key: String) -> [String]? {
            merged[prefix + key].map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        }
        if let names = merged[prefix + "names"], !names.isEmpty {
            throw SettingsError(
                key: prefix + "names", value: names,
                expected:
                    "secret values (\(prefix)values); references are resolved by the agent's secret resolver, which this executor cannot reach"
            )
        }
        guard let values = list("values") else {
            for key in ["envkeys", "filenames"] where merged[prefix + key] != nil {
                throw SettingsError(
                    key: prefix + key, value: merged[prefix + key]!, expected: "\(prefix)values beside it")
            }
            return ([:], [:])
        }
        let envkeys = list("envkeys")
        let filenames = list("filenames")
        guard envkeys != nil || filenames != nil else {
            throw SettingsError(
                key: prefix + "values", value: "(\(values.count) secrets, not shown)",
                expected: "\(prefix)envkeys or \(prefix)filenames saying where they go")
        }
        // Each list names where the secret value at the same position goes.
        func destinations(
            _ key: String, _ names: [String]?, counted: String, expected: String, valid: (String) -> Bool
        ) throws(SettingsError) -> [String: String] {
            guard let names else { return [:] }
            guard names.count == values.count else {
                throw SettingsError(
                    key: prefix + key, value: merged[prefix + key]!,
                    expected: "\(values.count) \(counted), one per secret value")
            }
            var placed: [String: String] = [:]
            for (name, value) in zip(names, values) {
                guard !name.isEmpty, valid(name) else {
                    throw SettingsError(key: prefix + key, value: name, expected: expected)
                }
                placed[name] = value
            }
            return placed
        }
        let environment = try destinations(
            "envkeys", envkeys, counted: "names", expected: "environment variable names", valid: { !$0.contains("=") })
        let files = try destinations(
            "filenames", filenames, counted: "file names", expected: "paths inside the sandbox",
            valid: { name in
                !name.hasPrefix("/")
                    && !name.split(separator: "/", omittingEmptySubsequences: false).contains {
                        $0.isEmpty || $0 == "." || $0 == ".."
                    }
            })
        return (environment, files)
    }

    /// A JVM-style size in MiB, as Spark reads `spark.executor.memory`: a number with an optional
    /// unit (b, k, kb, m, mb, g, gb, t, tb); no unit means MiB.
    static func mebibytes(_ text: String) -> Double? {
        let lower = text.lowercased().filter { !$0.isWhitespace }
        let digits = lower.prefix { $0.isNumber }
        guard !digits.isEmpty, let value = Double(digits) else { return nil }
        let units: [String: Double] = [
            "": 1, "b": 1.0 / 1_048_576, "k": 1.0 / 1024, "kb": 1.0 / 1024, "m": 1, "mb": 1, "g": 1024, "gb": 1024,
            "t": 1_048_576, "tb": 1_048_576,
        ]
        guard let unit = units[String(lower.dropFirst(digits.count))] else { return nil }
        return value * unit
    }

    /// The executor's log rotation (from its environment) with this application's overrides.
    public func logRotation(overriding base: LogRotation) -> LogRotation {
        LogRotation(
            maximumFileBytes: logMaximumFileBytes ?? base.maximumFileBytes,
            rotatedFiles: logRotatedFiles ?? base.rotatedFiles)
    }

    /// What every task and worker gets on top of the executor's environment:
    /// `spark.executorEnv.*`, environment secrets, and SPARK_HOME when the package has one.
    public func packageEnvironment(sparkHome: String?) -> [String: String] {
        var environment = taskEnvironment.merging(secretEnvironment) { _, secret in secret }
        if let sparkHome { environment["SPARK_HOME"] = sparkHome }
        return environment
    }

    /// Keys present that this executor does not read (for a debug log line).
    public var unknownKeys: [String] {
        properties.keys.filter { !Self.knownKeys.contains($0) && !$0.hasPrefix("spark.executorEnv.") }.sorted()
    }
}
