import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import XCTest

/// How the executor reaches the agent: bearer token, unix domain socket.
final class ConnectionEndToEndTests: XCTestCase {
    func testBearerTokenIsSentOnEveryCall() async throws {
        for encoding in WireEncoding.allCases {
            try await ExecutorUnderTest.run(encoding: encoding, adjust: { $0.authenticationToken = "s3cr3t.jwt" }) {
                test in
                try await test.agent.launch(test.task("auth", "true"))
                try await test.waitForStates(["auth": .taskFinished])
                let requests = await test.agent.state.requests
                XCTAssertFalse(requests.isEmpty)
                XCTAssertTrue(requests.allSatisfy { $0.status < 400 }, "\(requests.map { "\($0.status) \($0.message)" })")
                XCTAssertTrue(requests.allSatisfy { $0.contentType == encoding.contentType })
                await assertNoViolations(test.agent)
                await test.agent.shutdown()
            }
        }
    }

    func testUnixDomainSocket() async throws {
        let socket = NSTemporaryDirectory() + "sme-\(UUID().uuidString.prefix(8)).sock"
        defer { try? FileManager.default.removeItem(atPath: socket) }
        try await ExecutorUnderTest.run(encoding: .protobuf, adjust: { $0.unixSocketPath = socket }) { test in
            try await test.agent.launch(test.task("socket", "true"))
            try await test.waitForStates(["socket": .taskFinished])
            let paths = await Set(test.agent.state.requests.map(\.path))
            XCTAssertEqual(paths, ["/slave(1)/api/v1/executor"])
            await test.agent.shutdown()
        }
    }
}
