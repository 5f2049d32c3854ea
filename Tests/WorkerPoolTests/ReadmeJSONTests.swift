import Foundation
import SwiftProtobuf
import SparkExecutor
import Testing
import WorkerPool
@testable import WorkerProtocol
import WorkerWire

/// The README's JSON examples, as written: what a framework sends parses, and what the executor
/// sends back is exactly what the README shows (proto field names, as Mesos's JSON).
@Suite struct ReadmeJSONTests {
    /// Every ```json block of the README, as text.
    static func readmeJSONBlocks() throws -> [String] {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        var blocks: [String] = []
        var current: [Substring]?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if current == nil, trimmed == "```json" {
                current = []
            } else if current != nil, trimmed == "```" {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
            } else {
                current?.append(line)
            }
        }
        return blocks
    }

    static func blocks(startingWith key: String) throws -> [String] {
        try readmeJSONBlocks().filter { $0.trimmingCharacters(in: .whitespacesAndNewlines).hasPrefix("{\"\(key)\"") }
    }

    /// The same JSON document, whatever the order of keys and the spacing.
    static func sameJSON(_ lhs: [UInt8], _ rhs: String) throws -> Bool {
        let left = try JSONSerialization.jsonObject(with: Data(lhs)) as? NSDictionary
        let right = try JSONSerialization.jsonObject(with: Data(rhs.utf8)) as? NSDictionary
        return left != nil && left == right
    }

    @Test func batchesParseAsWritten() throws {
        let batches = try Self.blocks(startingWith: "tasks")
        #expect(batches.count >= 2)
        for text in batches {
            let (batch, encoding) = try MiniTaskBatch.parse(Array(text.utf8))
            #expect(encoding == .json)
            #expect(batch.tasks.count == 2 && batch.tasks.allSatisfy { !$0.id.isEmpty && !$0.function.isEmpty })
        }
    }

    @Test func releasesParseAsWritten() throws {
        let releases = try Self.blocks(startingWith: "release")
        #expect(releases.count >= 1)
        for text in releases {
            let (batch, encoding) = try MiniTaskBatch.parse(Array(text.utf8))
            #expect(encoding == .json && batch.tasks.isEmpty)
            #expect(!batch.release.isEmpty && batch.release.allSatisfy { $0.contains("/results/") })
        }
    }

    @Test func closuresParseAsWritten() throws {
        let closures = try Self.blocks(startingWith: "function")
        #expect(closures.count >= 2)
        for text in closures {
            let closure = try Sparkmesos_Worker_V1_Closure(taskData: Array(text.utf8))
            #expect(!closure.function.isEmpty && !closure.payload.isEmpty)
        }
    }

    /// The results the executor emits for the README's examples are the README's text.
    @Test func resultsAreEmittedAsWritten() throws {
        let examples = try Self.blocks(startingWith: "results")
        #expect(examples.count >= 2)
        // What the executor reads JSON closures and batches with: unknown fields refused.
        let options = Sparkmesos_Worker_V1_Closure.jsonOptions
        var sawDataFile = false
        for text in examples {
            let results = try Sparkmesos_Worker_V1_MiniTaskResults(jsonString: text, options: options)
            sawDataFile = sawDataFile || results.results.contains { !$0.dataFile.isEmpty }
            let emitted = MiniTaskResult.payload(
                results.results.map {
                    MiniTaskResult(
                        id: $0.id, state: $0.state, data: [UInt8]($0.data), error: $0.error, dataFile: $0.dataFile)
                }, .json)
            #expect(try Self.sameJSON(emitted, text), "\(String(decoding: emitted, as: UTF8.self))")
        }
        #expect(sawDataFile, "the README shows a result in a file")
    }

    /// A large mini-task result really goes out as `data_file`.
    @Test func theDispatcherSaysDataFile() async throws {
        let sent = SentMessages()
        try await withPool(try poolConfiguration(.coarse(workers: 1))) { pool in
            let dispatcher = MiniTaskDispatcher(pool: pool, sandbox: pool.configuration.sandbox, resultSizeLimit: 2) {
                sent.send($0)
            }
            await dispatcher.handle(
                Array(#"{"tasks": [{"id": "m3", "function": "echo", "payload": "aGVsbG8="}]}"#.utf8))
        }
        let message = try #require(sent.all.first)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(message)) as? [String: Any])
        let result = try #require((object["results"] as? [[String: Any]])?.first)
        #expect(Set(result.keys) == ["id", "state", "data_file"], "\(String(decoding: message, as: UTF8.self))")
        #expect((result["data_file"] as? String)?.hasSuffix("/results/mini-m3") == true)
    }
}
