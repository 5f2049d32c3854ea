import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import SystemTestLock
import TestCertificates
import Testing

/// How the executor reaches the agent: bearer token, unix domain socket.
@Suite(.serialized, .systemTest)
struct ConnectionEndToEndTests {
    @Test func bearerTokenIsSentOnEveryCall() async throws {
        for encoding in WireEncoding.allCases {
            try await ExecutorUnderTest.run(encoding: encoding, adjust: { $0.authenticationToken = "s3cr3t.jwt" }) {
                test in
                try await test.agent.launch(test.task("auth", "true"))
                try await test.waitForStates(["auth": .taskFinished])
                let requests = await test.agent.state.requests
                #expect(!requests.isEmpty)
                #expect(requests.allSatisfy { $0.status < 400 }, "\(requests.map { "\($0.status) \($0.message)" })")
                #expect(requests.allSatisfy { $0.contentType == encoding.contentType })
                await assertNoViolations(test.agent)
                await test.agent.shutdown()
            }
        }
    }

    /// A fresh executor sends SUBSCRIBE before it makes its cgroups, fetcher and task runner, and
    /// its runtime takes that request over (the same call): the agent sees one subscription.
    @Test func aFreshExecutorSubscribesOnce() async throws {
        for encoding in WireEncoding.allCases {
            try await ExecutorUnderTest.run(encoding: encoding) { test in
                try await test.agent.launch(test.task("one", "true"))
                try await test.waitForStates(["one": .taskFinished])
                #expect(await test.agent.state.subscriptions == 1)
                await assertNoViolations(test.agent)
                await test.agent.shutdown()
            }
        }
    }

    /// A wrong token is refused with 401: not retryable, so the executor gives up at once (exit 1)
    /// instead of waiting out the registration window.
    @Test func wrongTokenStopsTheExecutorWithExitOne() async throws {
        let code = try await ExecutorUnderTest.run(
            encoding: .protobuf, adjust: { $0.authenticationToken = "the-agents-token" },
            environment: ["MESOS_EXECUTOR_AUTHENTICATION_TOKEN": "a-stolen-token"], waitForSubscription: false
        ) { test in
            let state = try await test.agent.waitUntil("a refused SUBSCRIBE") { state in
                state.requests.contains { $0.status == 401 }
            }
            #expect(state.subscriptions == 0)
        }
        #expect(code == 1)
    }

    @Test func unixDomainSocket() async throws {
        let socket = NSTemporaryDirectory() + "sme-\(UUID().uuidString.prefix(8)).sock"
        defer { try? FileManager.default.removeItem(atPath: socket) }
        try await ExecutorUnderTest.run(encoding: .protobuf, adjust: { $0.unixSocketPath = socket }) { test in
            try await test.agent.launch(test.task("socket", "true"))
            try await test.waitForStates(["socket": .taskFinished])
            let paths = await Set(test.agent.state.requests.map(\.path))
            #expect(paths == ["/slave(1)/api/v1/executor"])
            await test.agent.shutdown()
        }
    }
}

/// An agent serving https, with a certificate made for the test.
@Suite(.serialized, .systemTest)
struct TLSEndToEndTests {
    @Test(.enabled(if: SelfSignedCertificate.canBeMade, "openssl not installed"))
    func httpsAgentWithAndWithoutCertificateVerification() async throws {
        try await ExecutorUnderTest.withSandbox { directory in
            let pair = try await SelfSignedCertificate(in: directory)
            for verify in [false, true] {
                try await ExecutorUnderTest.run(
                    encoding: .protobuf,
                    adjust: {
                        $0.tlsCertificateChainFile = pair.certificate
                        $0.tlsPrivateKeyFile = pair.key
                    },
                    environment: verify
                        ? ["LIBPROCESS_SSL_VERIFY_CERT": "1", "LIBPROCESS_SSL_CA_FILE": pair.certificate] : [:]
                ) { test in
                    try await test.agent.launch(test.task("secure", "true"))
                    try await test.waitForStates(["secure": .taskFinished])
                    await assertNoViolations(test.agent)
                    await test.agent.shutdown()
                }
            }
        }
    }
}
