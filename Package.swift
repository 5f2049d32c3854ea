// swift-tools-version: 6.2
import PackageDescription

// Every warning of ours is an error, in every build (so CI's build is the one developers make):
// dependencies are built with their warnings suppressed, so only our code can fail this way.
// The env-gated benchmark and fuzz targets, built by hand and never by CI, keep warnings warnings.
let gatedSwiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]
let swiftSettings: [SwiftSetting] = gatedSwiftSettings + [.treatAllWarnings(as: .error)]
let cSettings: [CSetting] = [.treatAllWarnings(as: .error)]
/// Release programs that start often (the executor, and a worker for every spawned worker) link
/// libstdc++ (the static Swift runtime's C++, and BoringSSL's) from its static archive instead of
/// loading libstdc++.so.6 at every start: -lstdc++ finds Packaging/static-libstdc++/libstdc++.so, a
/// linker script naming libstdc++.a, first (README, Performance).
let staticLibstdcxx: LinkerSetting = .unsafeFlags(
    ["-L", Context.packageDirectory + "/Packaging/static-libstdc++"], .when(configuration: .release))

/// Release links of the executor place its functions in the order a starting executor first runs
/// them (Packaging/code-order/generate writes the list), so that start-up and an idle executor touch
/// fewer pages of its code. The functions are sections of their own only when the build says so
/// (Packaging/release-flags: -function-sections); otherwise the list moves next to nothing.
/// With SME_LINK_MAP=FILE the link also writes its map there (every input section and where it went):
/// Packaging/code-order/generate needs it to name the code that has no symbol of its own.
let executorCodeOrder: LinkerSetting = .unsafeFlags(
    [
        "-Xlinker",
        "--section-ordering-file=" + Context.packageDirectory + "/Packaging/code-order/spark-mesos-executor.order",
    ] + (Context.environment["SME_LINK_MAP"].map { ["-Xlinker", "-Map=" + $0] } ?? []),
    .when(configuration: .release))

let package = Package(
    name: "spark-mesos-executor",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "spark-mesos-executor", targets: ["spark-mesos-executor"]),
        .executable(name: "spark-mesos-harness", targets: ["spark-mesos-harness"]),
        .library(name: "LocalAgent", targets: ["LocalAgent"]),
        .library(name: "MesosProto", targets: ["MesosProto"]),
        .library(name: "PackageFetch", targets: ["PackageFetch", "FetchPolicy"]),
        .library(name: "WorkerSDK", targets: ["WorkerSDK"]),
        .executable(name: "demo-worker", targets: ["demo-worker"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
    ],
    targets: [
        // Generated Swift for our .proto files (Protos/ -> Generated/ by .ci/generate-protos).
        .target(
            name: "MesosProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Protos"],
            swiftSettings: swiftSettings
        ),
        // Wire formats: RecordIO framing and Mesos-style JSON / protobuf encodings.
        .target(
            name: "MesosCodec",
            dependencies: [
                "MesosProto",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The executor's side of POST /api/v1/executor, on NIO.
        .target(
            name: "AgentConnection",
            dependencies: [
                "SystemSupport",
                "MesosCodec",
                "MesosProto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // A protocol-faithful stand-in for a Mesos agent's executor endpoint.
        .target(
            name: "LocalAgent",
            dependencies: [
                "SystemSupport",
                "MesosCodec",
                "MesosProto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // posix_spawn with a new session and pidfd-based reaping, in C for the flags Swift cannot reach.
        .target(name: "CProcessSpawn", cSettings: cSettings),
        // What every part needs of the system and of Swift concurrency: threads of our own, POSIX
        // helpers, memory reclaim, and the child tasks a long-lived run() hosts.
        .target(
            name: "SystemSupport",
            dependencies: ["CProcessSpawn"],
            swiftSettings: swiftSettings
        ),
        // Child processes: spawn into their own session, reap, signal the whole tree.
        .target(
            name: "ProcessSupervision",
            dependencies: ["CProcessSpawn", "SystemSupport"],
            swiftSettings: swiftSettings
        ),
        // One HTTP/1.1 GET (TLS optional) on NIO, its body read at the reader's pace: the package
        // fetcher's downloads and the HTTP(S) checks' probes.
        .target(
            name: "HTTPGet",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // Health checks and checks: the scheduling state machine and the COMMAND/HTTP(S)/TCP probes.
        .target(
            name: "TaskChecks",
            dependencies: [
                "HTTPGet",
                "MesosProto",
                "ProcessSupervision",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // libcgroup (Debian libcgroup-dev) for creating, configuring and removing cgroups.
        .systemLibrary(name: "CCgroup", pkgConfig: "libcgroup", providers: [.apt(["libcgroup-dev"])]),
        // Cgroups for tasks and workers: limits, usage, OOM kills, containment, cleanup (v1 and v2).
        .target(
            name: "Isolation",
            dependencies: ["SystemSupport", "CCgroup", "ProcessSupervision"],
            swiftSettings: swiftSettings
        ),
        // The seam between the runtime and what runs a task: TaskRunner, the running task's one
        // handle (TaskControl), how it ended (TaskOutcome), and Spark's task states.
        .target(
            name: "TaskRunning",
            dependencies: ["SystemSupport", "Isolation", "MesosProto", "ProcessSupervision"],
            swiftSettings: swiftSettings
        ),
        // The executor: configuration, task lifecycle state machine, the runtime that owns tasks.
        .target(
            name: "ExecutorCore",
            dependencies: [
                "SystemSupport",
                "AgentConnection",
                "TaskRunning",
                "Isolation",
                "MesosCodec",
                "MesosProto",
                "ProcessSupervision",
                "TaskChecks",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // libarchive's header (Debian libarchive-dev) for streaming extraction of fetched packages. Not
        // linked: PackageFetch loads libarchive.so.13 on the first extraction (LibArchive.swift), so an
        // executor does not map and relocate it, libxml2 and ICU at exec.
        .systemLibrary(name: "CArchive"),
        // What may be fetched and written, decided before a byte moves: URIs, the archive path policy,
        // and why a fetch fails. Pure code, so its fuzz targets build without NIO or BoringSSL.
        .target(name: "FetchPolicy", swiftSettings: swiftSettings),
        // Fetching, verifying, extracting and caching the Spark package and other task URIs.
        .target(
            name: "PackageFetch",
            dependencies: [
                "FetchPolicy",
                "SystemSupport",
                "CArchive",
                "HTTPGet",
                "ProcessSupervision",
                // For its BoringSSL's sha256 (SHA256.swift).
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Spark side: executor settings from Spark properties, the package, and the task
        // runners: commands, closures and mini-tasks (on the worker pool), and the dispatch between them.
        .target(
            name: "SparkExecutor",
            dependencies: [
                "SystemSupport",
                "AgentConnection",
                "ExecutorCore",
                "Isolation",
                "MesosCodec",
                "MesosProto",
                "FetchPolicy",
                "PackageFetch",
                "ProcessSupervision",
                "TaskRunning",
                "WorkerPool",
                "WorkerProtocol",
                "WorkerWire",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Harness job files (JSON or YAML) read into jobs, every key checked. Without NIO, so its
        // fuzz target builds without NIO's event loops or BoringSSL.
        .target(
            name: "HarnessJobs",
            dependencies: ["MesosCodec", "MesosProto", .product(name: "Yams", package: "Yams")],
            swiftSettings: swiftSettings
        ),
        // Harness mode: driving the real executor against the local agent through a job, reports.
        .target(
            name: "Harness",
            dependencies: [
                "SystemSupport",
                "HarnessJobs",
                "LocalAgent",
                "MesosCodec",
                "MesosProto",
                "ProcessSupervision",
                "CProcessSpawn",
            ],
            exclude: ["Examples"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "spark-mesos-executor",
            dependencies: [
                "SystemSupport",
                "AgentConnection",
                "ExecutorCore",
                "Isolation",
                "SparkExecutor",
                "PackageFetch",
                "ProcessSupervision",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings,
            // The static Swift stdlib links with --export-dynamic, which puts every global symbol of our
            // packages into .dynsym/.dynstr/.gnu.hash (3.4 MB) that ld.so then reads at start: 2 MB of
            // idle RSS for a program nothing loads symbols from.
            linkerSettings: [.unsafeFlags(["-Xlinker", "--no-export-dynamic"]), staticLibstdcxx, executorCodeOrder]
        ),
        // Harness mode as its own program, so the executor carries none of it.
        .executableTarget(
            name: "spark-mesos-harness",
            dependencies: [
                "Harness",
                "HarnessJobs",
                "MesosCodec",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // The worker pipe messages without Foundation or SwiftProtobuf, shared by workers and the executor.
        .target(name: "WorkerWire", swiftSettings: swiftSettings),
        // The closure-task contract: worker.proto, its generated Swift, parsing of closures and mini-task batches.
        .target(
            name: "WorkerProtocol",
            dependencies: ["WorkerWire", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["Protos"],
            swiftSettings: swiftSettings
        ),
        // The fork server's C side: descriptor passing and clone(CLONE_PARENT), for workers and the pool.
        .target(name: "CForkServer", cSettings: cSettings),
        // What a worker program links: register closures, run() or serve().
        .target(
            name: "WorkerSDK", dependencies: ["SystemSupport", "WorkerWire", "CForkServer"],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "demo-worker", dependencies: ["WorkerSDK", "WorkerWire"], swiftSettings: swiftSettings,
            linkerSettings: [staticLibstdcxx]),
        // The executor's side of workers: worker processes (fine and coarse), the fork server, calls.
        .target(
            name: "WorkerPool",
            dependencies: [
                "SystemSupport",
                "CForkServer",
                "Isolation",
                "TaskRunning",
                "MesosCodec",
                "MesosProto",
                "ProcessSupervision",
                "WorkerProtocol",
                "WorkerWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "WorkerPoolTests",
            dependencies: [
                "SystemSupport", "WorkerPool", "WorkerProtocol", "WorkerWire", "SparkExecutor", "TaskRunning",
                "Isolation", "MesosProto", "SeededRandom", "TemporaryDirectory",
                "MesosCodec", "demo-worker",
                "CForkServer", "ProcessSupervision", "WorkerSDK",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IsolationTests",
            dependencies: ["SystemSupport", "Isolation", "ProcessSupervision", "CProcessSpawn", "SystemTestLock"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "LocalAgentTests",
            dependencies: [
                "LocalAgent",
                "MesosCodec",
                "MesosProto",
                "ProcessSupervision",
                "SystemSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // A seeded random generator shared by the randomised tests.
        .target(name: "SeededRandom", path: "Tests/Support/SeededRandom", swiftSettings: swiftSettings),
        // `.systemTest`: the suites that run executors, agents, real processes or cgroups, one test at a
        // time across every test target (Swift Testing runs the rest in parallel).
        .target(
            name: "SystemTestLock", dependencies: ["SystemSupport"], path: "Tests/Support/SystemTestLock",
            swiftSettings: swiftSettings),
        // `withTemporaryDirectory`: the tests' sandboxes and scratch directories, removed afterwards.
        .target(name: "TemporaryDirectory", path: "Tests/Support/TemporaryDirectory", swiftSettings: swiftSettings),
        // A self-signed certificate for the tests' TLS servers (made by openssl).
        .target(
            name: "TestCertificates",
            dependencies: ["SystemSupport", .product(name: "NIOSSL", package: "swift-nio-ssl")],
            path: "Tests/Support/TestCertificates", swiftSettings: swiftSettings),
        .testTarget(
            name: "MesosCodecTests",
            dependencies: [
                "MesosCodec", "MesosProto", "SeededRandom", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExecutorCoreTests",
            dependencies: [
                "SystemSupport", "SeededRandom", "ExecutorCore", "TaskRunning", "MesosProto", "MesosCodec",
                "ProcessSupervision",
                "AgentConnection",
                "SparkExecutor", "FetchPolicy", "PackageFetch", "LocalAgent", "TaskChecks", "SystemTestLock",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TaskChecksTests",
            dependencies: [
                "SystemSupport", "TaskChecks", "MesosProto", "ProcessSupervision", "SystemTestLock",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExecutorEndToEndTests",
            dependencies: [
                "ExecutorCore", "LocalAgent", "AgentConnection", "MesosCodec", "MesosProto", "ProcessSupervision",
                "SparkExecutor", "PackageFetch", "demo-worker", "Isolation", "SystemSupport", "SystemTestLock",
                "TemporaryDirectory", "TestCertificates",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HarnessTests",
            dependencies: [
                "Harness", "HarnessJobs", "LocalAgent", "MesosCodec", "MesosProto", "ProcessSupervision",
                "spark-mesos-harness",
                "spark-mesos-executor", "SystemSupport", "SystemTestLock", "TemporaryDirectory",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "SystemTestLockTests", dependencies: ["SystemTestLock"], swiftSettings: swiftSettings),
        .testTarget(
            name: "AgentConnectionTests",
            dependencies: [
                "AgentConnection", "LocalAgent", "MesosCodec", "MesosProto",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HTTPGetTests",
            dependencies: [
                "HTTPGet", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "SystemSupportTests",
            dependencies: ["SystemSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ProcessSupervisionTests",
            dependencies: ["SystemSupport", "ProcessSupervision", "TemporaryDirectory"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PackageFetchTests",
            dependencies: [
                "SystemSupport", "TemporaryDirectory",
                "FetchPolicy",
                "PackageFetch",
                "ProcessSupervision",
                "CArchive",
                "TestCertificates",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings,
            // The tests write archives with libarchive directly; the fetcher loads it itself.
            linkerSettings: [.linkedLibrary("archive")]
        ),
    ]
)

// Benchmarks stay out of the default build: `SME_BENCHMARKS=1 swift build -c release …`.
if Context.environment["SME_BENCHMARKS"] != nil {
    package.targets.append(
        .executableTarget(
            name: "executor-benchmark",
            dependencies: ["LocalAgent", "MesosProto", "Isolation"],
            path: "Tests/Benchmarks/ExecutorBenchmark",
            swiftSettings: gatedSwiftSettings
        ))
    // The floor of a Swift program's start: exec to exit of a static-stdlib hello.
    package.targets.append(
        .executableTarget(name: "benchmark-hello", path: "Tests/Benchmarks/Hello", swiftSettings: gatedSwiftSettings))
}

// libFuzzer targets for every decoder of outside input, out of the default build (Tests/Fuzz/README.md):
// `SME_FUZZ=1 swift build -c release --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address
// --product fuzz-recordio`.
if Context.environment["SME_FUZZ"] != nil {
    let fuzzTargets: [(name: String, path: String, dependencies: [Target.Dependency])] = [
        ("fuzz-recordio", "RecordIOFuzz", ["MesosCodec", .product(name: "NIOCore", package: "swift-nio")]),
        ("fuzz-mesos-event", "MesosEventFuzz", ["MesosCodec", "MesosProto"]),
        ("fuzz-worker-wire", "WorkerWireFuzz", ["WorkerWire"]),
        (
            "fuzz-closure", "ClosureFuzz",
            ["WorkerProtocol", "WorkerWire", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        ("fuzz-duration", "DurationFuzz", ["MesosCodec"]),
        ("fuzz-fetch-uri", "FetchURIFuzz", ["FetchPolicy"]),
        ("fuzz-archive-path", "ArchivePathFuzz", ["FetchPolicy"]),
        ("fuzz-job-file", "JobFileFuzz", ["HarnessJobs"]),
    ]
    package.targets += [
        .target(name: "CFuzzDriver", path: "Tests/Fuzz/CFuzzDriver"),
        .target(
            name: "FuzzDriver", dependencies: ["CFuzzDriver"], path: "Tests/Fuzz/FuzzDriver",
            swiftSettings: gatedSwiftSettings),
    ]
    for target in fuzzTargets {
        package.targets.append(
            .executableTarget(
                name: target.name, dependencies: ["FuzzDriver"] + target.dependencies,
                path: "Tests/Fuzz/\(target.path)",
                swiftSettings: gatedSwiftSettings))
    }
}
