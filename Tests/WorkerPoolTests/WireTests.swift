import Foundation
import MesosCodec
import NIOCore
import SwiftProtobuf
import Testing
import WorkerPool
@testable import WorkerProtocol
import WorkerWire

/// The Foundation-free codec must agree with the generated code for worker.proto.
@Suite struct WireTests {
    @Test func toWorkerMatchesTheGeneratedCode() throws {
        let run = RunRequest(
            id: 300, taskID: "t1", function: "echo", payload: [0, 1, 2], environment: ["B": "2", "A": "1"])
        let generated = try Sparkmesos_Worker_V1_ToWorker(serializedBytes: ToWorker.run(run).encoded())
        #expect(generated.run.id == 300 && generated.run.taskID == "t1" && generated.run.function == "echo")
        #expect(generated.run.payload == Data([0, 1, 2]) && generated.run.environment == ["A": "1", "B": "2"])
        #expect(!generated.run.resultMayWait)
        #expect(try ToWorker(decoding: ArraySlice(try generated.serializedBytes() as [UInt8])) == .run(run))
        // A mini-task's run: its result may wait.
        var miniTask = run
        miniTask.resultMayWait = true
        let generatedMiniTask = try Sparkmesos_Worker_V1_ToWorker(serializedBytes: ToWorker.run(miniTask).encoded())
        #expect(generatedMiniTask.run.resultMayWait)
        #expect(
            try ToWorker(decoding: ArraySlice(try generatedMiniTask.serializedBytes() as [UInt8])) == .run(miniTask))
        var cancel = Sparkmesos_Worker_V1_ToWorker()
        cancel.cancel.id = 7
        #expect(try ToWorker(decoding: ArraySlice(try cancel.serializedBytes() as [UInt8])) == .cancel(id: 7))
    }

    @Test func fromWorkerMatchesTheGeneratedCode() throws {
        let hello = WorkerHello(workerName: "w", functions: ["a", "b"], concurrency: 4)
        let generatedHello = try Sparkmesos_Worker_V1_FromWorker(serializedBytes: FromWorker.hello(hello).encoded())
        #expect(generatedHello.hello.protocolVersion == 1 && generatedHello.hello.functions == ["a", "b"])
        #expect(generatedHello.hello.concurrency == 4 && generatedHello.hello.workerName == "w")
        // A fork server's flags, both ways.
        let server = WorkerHello(
            workerName: "s", functions: [], concurrency: 1, forkServer: true, forkServerJoinsCgroups: true,
            forkServerCreatesInCgroup: true)
        let generatedServer = try Sparkmesos_Worker_V1_FromWorker(serializedBytes: FromWorker.hello(server).encoded())
        #expect(generatedServer.hello.forkServer && generatedServer.hello.forkServerJoinsCgroups)
        #expect(generatedServer.hello.forkServerCreatesInCgroup)
        #expect(
            try FromWorker(decoding: ArraySlice(try generatedServer.serializedBytes() as [UInt8])) == .hello(server))
        var result = Sparkmesos_Worker_V1_FromWorker()
        result.result.id = 9
        result.result.status = .unknownFunction
        result.result.error = "no"
        result.result.data = Data([7])
        #expect(
            try FromWorker(decoding: ArraySlice(try result.serializedBytes() as [UInt8]))
                == .result(RunResult(id: 9, status: .unknownFunction, data: [7], error: "no")))
    }

    /// Messages are written in place, their nested message sized first: every length must come
    /// out as the generated code's, across the sizes where a varint grows a byte, and a frame
    /// holds exactly `frameSize` bytes and reads back whole.
    @Test func inPlaceEncodingIsTheGeneratedCodesByteForByte() throws {
        var deterministic = BinaryEncodingOptions()
        deterministic.useDeterministicOrdering = true
        var toWorker: [ToWorker] = [.cancel(id: 0), .cancel(id: 127), .cancel(id: 128), .cancel(id: .max)]
        var fromWorker: [FromWorker] = [
            .hello(WorkerHello(workerName: "", functions: ["", "é", "echo"], concurrency: 0)),
            .hello(
                WorkerHello(
                    workerName: "w", functions: [], concurrency: 300, forkServer: true, forkServerJoinsCgroups: true)),
            .progress(RunProgress(id: 1, fraction: 0)), .progress(RunProgress(id: 2, fraction: 0.5, message: "½ done")),
        ]
        for size in [0, 1, 100, 127, 128, 16_383, 16_384, 2_097_152] {
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
            toWorker.append(
                .run(
                    RunRequest(
                        id: UInt64(size), taskID: "task-\(size)", function: "f", payload: payload,
                        environment: size.isMultiple(of: 2)
                            ? [:] : ["": "", "K": "v", "é": String(repeating: "x", count: 200)],
                        resultMayWait: size > 100)))
            fromWorker.append(
                .result(RunResult(id: UInt64(size) << 20, status: .ok, data: payload, error: size > 100 ? "e" : "")))
        }
        var stream: [UInt8] = []
        for message in toWorker {
            let generated = try Sparkmesos_Worker_V1_ToWorker(serializedBytes: message.encoded())
            #expect(message.encoded() == (try generated.serializedBytes(options: deterministic) as [UInt8]))
            let before = stream.count
            message.appendFrame(to: &stream)
            #expect(stream.count - before == message.frameSize)
        }
        var decoder = FrameDecoder()
        decoder.feed(stream)
        for message in toWorker { #expect(try ToWorker(decoding: try #require(try decoder.next())) == message) }
        #expect(try decoder.next() == nil)
        stream = []
        for message in fromWorker {
            let generated = try Sparkmesos_Worker_V1_FromWorker(serializedBytes: message.encoded())
            #expect(message.encoded() == (try generated.serializedBytes(options: deterministic) as [UInt8]))
            let before = stream.count
            message.appendFrame(to: &stream)
            #expect(stream.count - before == message.frameSize)
        }
        decoder.feed(stream)
        for message in fromWorker { #expect(try FromWorker(decoding: try #require(try decoder.next())) == message) }
        #expect(try decoder.next() == nil)
    }

    /// A batch's protobuf form is read, and its results written, by the hand-written codec: the
    /// same mini-tasks as the generated code reads, the same bytes as it writes.
    @Test func miniTaskBatchesAndResultsAgreeWithTheGeneratedCode() throws {
        var batch = Sparkmesos_Worker_V1_MiniTaskBatch()
        for index in 0..<5 {
            var task = Sparkmesos_Worker_V1_MiniTask()
            task.id = index == 3 ? "mini-é-\(index)" : "m\(index)"
            task.function = index == 4 ? "" : "echo"
            task.payload = Data((0..<(index * 70)).map { UInt8(truncatingIfNeeded: $0) })
            if index == 2 { task.environment = ["A": "1", "": "", "é": "x"] }
            batch.tasks.append(task)
        }
        let expected = batch.tasks.map {
            MiniTask(id: $0.id, function: $0.function, payload: [UInt8]($0.payload), environment: $0.environment)
        }
        let (decoded, encoding) = try MiniTaskBatch.parse(try batch.serializedBytes())
        #expect(encoding == .protobuf && decoded == MiniTaskBatch(tasks: expected))
        let (fromJSON, jsonEncoding) = try MiniTaskBatch.parse(try batch.jsonUTF8Bytes())
        #expect(jsonEncoding == .json && fromJSON == MiniTaskBatch(tasks: expected))
        #expect(try MiniTaskBatch.parse([]).0 == MiniTaskBatch())
        // Result files to release, alone or beside mini-tasks, in both encodings.
        batch.release = ["/sandbox/results/mini-m3", "/sandbox/results/t1"]
        #expect(
            try MiniTaskBatch.parse(try batch.serializedBytes()).0
                == MiniTaskBatch(tasks: expected, release: batch.release))
        #expect(
            try MiniTaskBatch.parse(try batch.jsonUTF8Bytes()).0
                == MiniTaskBatch(tasks: expected, release: batch.release))
        let releaseOnly = #"{"release": ["/sandbox/results/mini-m3"]}"#
        #expect(
            try MiniTaskBatch.parse(Array(releaseOnly.utf8)).0 == MiniTaskBatch(release: ["/sandbox/results/mini-m3"]))

        let results = [
            MiniTaskResult(id: "m0", state: "FINISHED", data: [1, 2, 3]),
            MiniTaskResult(id: "m1", state: "FINISHED"),
            MiniTaskResult(id: "é", state: "FAILED", error: "closure 'echo' threw: no"),
            MiniTaskResult(id: "m3", state: "FINISHED", dataFile: "results/mini-m3"),
            MiniTaskResult(id: "", state: "LOST", data: Array(repeating: 7, count: 300), error: "e"),
        ]
        let generated = Self.generated(results)
        #expect(MiniTaskResult.payload(results, .protobuf) == (try generated.serializedBytes() as [UInt8]))
        #expect(MiniTaskResult.payload([], .protobuf) == [])
        let json = MiniTaskResult.payload(results, .json)
        #expect(try Sparkmesos_Worker_V1_MiniTaskResults(jsonUTF8Bytes: json) == generated)
        #expect(String(decoding: json, as: UTF8.self).contains("\"data_file\""))
    }

    /// `results` as the generated code's message.
    static func generated(_ results: [MiniTaskResult]) -> Sparkmesos_Worker_V1_MiniTaskResults {
        var generated = Sparkmesos_Worker_V1_MiniTaskResults()
        generated.results = results.map {
            var result = Sparkmesos_Worker_V1_MiniTaskResult()
            result.id = $0.id
            result.state = $0.state
            result.data = Data($0.data)
            result.error = $0.error
            result.dataFile = $0.dataFile
            return result
        }
        return generated
    }

    /// The results' JSON form is written by hand, byte for byte as SwiftProtobuf writes it with
    /// the proto field names: every character that must or may be escaped (C0 and C1 controls,
    /// DEL, quote, backslash) beside UTF-8 of every length, and data of every length modulo 3.
    @Test func resultsJSONIsTheGeneratedCodesByteForByte() throws {
        var scalars: [Unicode.Scalar] = (0...0xa0).map { Unicode.Scalar(UInt8($0)) }
        scalars += ["é", "\u{7ff}", "\u{800}", "\u{2028}", "\u{fffd}", "\u{ffff}", "\u{10000}", "😀", "\u{10ffff}"]
        var random = SystemRandomNumberGenerator()
        func text(_ length: Int) -> String {
            var text = String.UnicodeScalarView()
            for _ in 0..<length { text.append(scalars.randomElement(using: &random)!) }
            return String(text)
        }
        var cases: [[MiniTaskResult]] = [
            [], [MiniTaskResult(id: "", state: "")],
            [MiniTaskResult(id: String(String.UnicodeScalarView(scalars)), state: "FINISHED")],
            [MiniTaskResult(id: "\u{c2}\u{80}", state: "\u{9f}\u{a0}\u{c2}", error: "\\\"/")],
        ]
        for round in 0..<200 {
            cases.append(
                (0..<(round % 7)).map { index in
                    MiniTaskResult(
                        id: text(index * 3), state: index % 2 == 0 ? "FINISHED" : text(2),
                        data: (0..<((round * 5 + index) % 40)).map { _ in UInt8.random(in: 0...255, using: &random) },
                        error: round % 3 == 0 ? text(round % 50) : "", dataFile: index == 1 ? text(5) : "")
                })
        }
        cases.append([MiniTaskResult(id: "big", state: "FINISHED", data: Array(repeating: 0xfb, count: 1 << 20) + [1])])
        // Every 12-bit half of a 3-byte group, in both halves (base64 is written two digits a lookup).
        let halves = (0..<4096).flatMap { half -> [UInt8] in
            let group = half << 12 | (4095 - half)
            return [UInt8(group >> 16), UInt8((group >> 8) & 255), UInt8(group & 255)]
        }
        cases.append([MiniTaskResult(id: "halves", state: "FINISHED", data: halves + [7, 8])])
        for results in cases {
            let generated = Self.generated(results)
            var options = JSONEncodingOptions()
            options.preserveProtoFieldNames = true
            let expected: [UInt8] = try generated.jsonUTF8Bytes(options: options)
            let written = MiniTaskResult.payload(results, .json)
            #expect(written == expected, "\(String(decoding: expected.prefix(300), as: UTF8.self))")
            #expect(try Sparkmesos_Worker_V1_MiniTaskResults(jsonUTF8Bytes: written) == generated)
        }
    }

    /// The plain JSON form of a batch is read directly, to the same mini-tasks as the generated
    /// code reads; every other form comes back nil, left to SwiftProtobuf, whose reading or refusal
    /// `MiniTaskBatch.parse` then gives.
    @Test func plainJSONBatchesAreReadAsTheGeneratedCodeReadsThem() throws {
        // What the executor reads JSON closures and batches with: unknown fields refused.
        let options = Sparkmesos_Worker_V1_Closure.jsonOptions
        func generated(_ text: String) throws -> [MiniTask] {
            try Sparkmesos_Worker_V1_MiniTaskBatch(jsonUTF8Bytes: Array(text.utf8), options: options).tasks.map {
                MiniTask(id: $0.id, function: $0.function, payload: [UInt8]($0.payload), environment: $0.environment)
            }
        }
        var plain = [
            "{}", " {\n} ", #"{"tasks": []}"#, #"{"tasks":[{}]}"#,
            #"{ "tasks" : [ { "id" : "m1" , "function" : "echo" , "payload" : "AAEC/w==" } ] }"#,
            #"{"tasks":[{"payload":"QQ==","environment":{},"id":"","function":"f"}]}"#,
            #"{"tasks":[{"id":"\u00e9\ud83d\ude00\u0000\"\\\/\b\f\n\r\t","environment":{"A\n":"1","":""}}]}"#,
            "{\"tasks\":[{\"id\":\"é😀\u{7f}\"}]}",
        ]
        var random = SystemRandomNumberGenerator()
        for round in 0..<50 {
            var batch = Sparkmesos_Worker_V1_MiniTaskBatch()
            for index in 0..<(round % 5) {
                var task = Sparkmesos_Worker_V1_MiniTask()
                task.id = "m\(round)-\(index)-\u{1}\"é"
                task.function = index % 2 == 0 ? "echo" : ""
                task.payload = Data((0..<((round + index) % 9)).map { _ in UInt8.random(in: 0...255, using: &random) })
                if index == 1 { task.environment = ["K\(round)": "v\t\(index)", "B": ""] }
                batch.tasks.append(task)
            }
            plain.append(String(decoding: try batch.jsonUTF8Bytes() as [UInt8], as: UTF8.self))
        }
        for text in plain {
            let read = MiniTask.decodePlainJSONBatch(Array(text.utf8))
            #expect(read == (try generated(text)), "\(text)")
            #expect(try MiniTaskBatch.parse(Array(text.utf8)).0.tasks == generated(text))
        }
        // A pair of `\u` escapes above plane 1 is composed right; SwiftProtobuf's JSON decoder ORs
        // `0x10000` with `high << 10`, which already reaches bit 16 there (U+20000 came out U+10000).
        let pairs = #"{"tasks":[{"id":"\ud840\udc00\udbff\udfff\ud83d\ude00"}]}"#
        #expect(MiniTask.decodePlainJSONBatch(Array(pairs.utf8))?.first?.id == "\u{20000}\u{10ffff}😀")
        #expect(try generated(pairs).first?.id != "\u{20000}\u{10ffff}😀")
        // Left to SwiftProtobuf: valid in protobuf's JSON mapping but not plain...
        let otherForms = [
            #"{"tasks":null}"#, #"{"tasks":[{"id":null}]}"#, #"{"tasks":[{"payload":"QQ"}]}"#,
            #"{"tasks":[{"payload":"-_8="}]}"#, #"{"tasks":[{"\u0069d":"m1"}]}"#,
        ]
        for text in otherForms {
            #expect(MiniTask.decodePlainJSONBatch(Array(text.utf8)) == nil, "\(text)")
            #expect(try MiniTaskBatch.parse(Array(text.utf8)).0.tasks == generated(text), "\(text)")
        }
        // ...and not JSON of a batch at all: refused with SwiftProtobuf's reason.
        let refused = [
            #"{"tasks":[{"id":"m1","id":"m2"}]}"#, #"{"tasks":[{"name":"m1"}]}"#, #"{"tasks":[]} x"#,
            #"{"tasks":[{"id":"\ud800"}]}"#, #"{"tasks":[{"id":1}]}"#, #"{"tasks":[{"payload":"QQ=x"}]}"#,
            #"{"tasks":[{"environment":{"A":"1","A":"2"}}]}"#, "{\"tasks\":[{\"id\":\"a\u{1}\"}]}", #"{"tasks":["#,
        ]
        for text in refused {
            #expect(MiniTask.decodePlainJSONBatch(Array(text.utf8)) == nil, "\(text)")
            if (try? generated(text)) == nil {
                #expect(throws: WorkerProtocolError.self, "\(text)") { try MiniTaskBatch.parse(Array(text.utf8)) }
            }
        }
    }

    /// The plain reader's base64 (four digits at a time through a table) against Foundation's
    /// for every length up to a few groups and for large payloads, and against the generated code
    /// for malformed digits and padding anywhere: read alike, or refused (then left to
    /// SwiftProtobuf) alike.
    @Test func plainJSONPayloadsOfAnyLengthAndMalformedBase64() throws {
        var random = SystemRandomNumberGenerator()
        for length in Array(0...40) + [1023, 1024, 1025, 65_536] {
            let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let text = #"{"tasks":[{"id":"m","function":"f","payload":"\#(Data(payload).base64EncodedString())"}]}"#
            #expect(MiniTask.decodePlainJSONBatch(Array(text.utf8))?.first?.payload == payload, "\(length) bytes")
        }
        let options = Sparkmesos_Worker_V1_Closure.jsonOptions
        let malformed = [
            "QR==", "QUJ=", "QUI=", "QQ=", "Q===", "====", "QQ=A", "QQ==QUJD", "=QUJ", "Q!==", "QU!D", "QUJ!", "!UJD",
            "QUJD QUJD", #"QUJD\n"#, "QUJDQ\u{e9}==", "QUJDRA", "QUJDRA=", "QUJDRA==", "QUJDRB==", "QUJDREU=",
        ]
        for digits in malformed {
            let text = #"{"tasks":[{"id":"m","function":"f","payload":"\#(digits)"}]}"#
            let generated = try? Sparkmesos_Worker_V1_MiniTaskBatch(jsonUTF8Bytes: Array(text.utf8), options: options)
            let expected = generated.map { [UInt8]($0.tasks[0].payload) }
            if let read = MiniTask.decodePlainJSONBatch(Array(text.utf8)) {
                #expect(read.first?.payload == expected, "\(digits)")
            }
            #expect((try? MiniTaskBatch.parse(Array(text.utf8)).0.tasks)?.first?.payload == expected, "\(digits)")
        }
    }

    /// A closure task's plain JSON `Closure` is read directly too, as the generated code reads
    /// it (pairs above plane 1 excepted, composed right); other forms are SwiftProtobuf's.
    @Test func plainJSONClosuresAreReadAsTheGeneratedCodeReadsThem() throws {
        // What the executor reads JSON closures and batches with: unknown fields refused.
        let options = Sparkmesos_Worker_V1_Closure.jsonOptions
        let plain = [
            #"{"function": "pi", "payload": "MTAwMDAw", "environment": {"SEED": "7"}}"#,
            #"{"environment":{"A\tB":"\u00e9"},"function":"echo"}"#, #" { "payload" : "" , "function":"f" } "#,
        ]
        for text in plain {
            let read = try #require(MiniTask.decodePlainJSONClosure(Array(text.utf8)))
            let generated = try Sparkmesos_Worker_V1_Closure(jsonUTF8Bytes: Array(text.utf8), options: options)
            #expect(read.id.isEmpty && read.function == generated.function)
            #expect(read.payload == [UInt8](generated.payload) && read.environment == generated.environment)
            #expect(try Sparkmesos_Worker_V1_Closure(taskData: Array(text.utf8)) == generated)
        }
        let pair = #"{"function":"echo","environment":{"K":"\ud840\udc00"}}"#
        #expect(try Sparkmesos_Worker_V1_Closure(taskData: Array(pair.utf8)).environment == ["K": "\u{20000}"])
        // Not plain: SwiftProtobuf's reading, or its refusal with what is wrong.
        #expect(MiniTask.decodePlainJSONClosure(Array(#"{"function":"f","payload":"QQ"}"#.utf8)) == nil)
        #expect(
            try Sparkmesos_Worker_V1_Closure(taskData: Array(#"{"function":"f","payload":"QQ"}"#.utf8)).payload
                == Data([0x41]))
        for (text, says) in [
            (#"{"id":"m1","function":"f"}"#, "not a Closure (JSON"), (#"{"function":"f"} {}"#, "not a Closure (JSON"),
            (#"{"payload":"QQ=="}"#, "without a function name"), (#"{"function":""}"#, "without a function name"),
        ] {
            #expect(MiniTask.decodePlainJSONClosure(Array(text.utf8))?.function.isEmpty ?? true)
            #expect {
                try Sparkmesos_Worker_V1_Closure(taskData: Array(text.utf8))
            } throws: { error in
                (error as? WorkerProtocolError)?.description.contains(says) == true
            }
        }
    }

    /// A malformed protobuf batch is refused with what is wrong, never misread.
    @Test func malformedMiniTaskBatchesAreRefused() {
        let cases: [(bytes: [UInt8], says: String)] = [
            ([0x0A, 0x05, 0x0A, 0x01], "past the end"),  // a task longer than what follows
            ([0x0D, 0x01, 0x02, 0x03, 0x04], "not length-delimited"),  // tasks as a fixed32
            ([0x0A, 0x03, 0x0A, 0x01, 0xFF], "not UTF-8"),  // an id that is not UTF-8
            ([0x0A, 0x02, 0x18, 0x01], "not length-delimited"),  // a payload as a varint
            ([0x0A, 0x01, 0x80], "truncated varint"),
            ([0x00], "field number 0"),
        ]
        for (bytes, says) in cases {
            #expect {
                try MiniTaskBatch.parse(bytes)
            } throws: { error in
                let text = "\(error)"
                return text.contains("not a MiniTaskBatch (protobuf, \(bytes.count) bytes)") && text.contains(says)
            }
        }
        // A fixed32 where a run's payload belongs is refused too (it was read as 4 bytes of payload).
        #expect(throws: WireError.self) { try ToWorker(decoding: [0x0A, 0x05, 0x25, 0x01, 0x02, 0x03, 0x04]) }
    }

    @Test func progressMatchesTheGeneratedCodeAndBadFractionsAreRefused() throws {
        let progress = RunProgress(id: 12, fraction: 0.375, message: "rows 3 of 8")
        let generated = try Sparkmesos_Worker_V1_FromWorker(serializedBytes: FromWorker.progress(progress).encoded())
        #expect(generated.progress.id == 12 && generated.progress.fraction == 0.375)
        #expect(generated.progress.message == "rows 3 of 8")
        #expect(try FromWorker(decoding: ArraySlice(try generated.serializedBytes() as [UInt8])) == .progress(progress))
        for bad in [7.0, -0.5, .nan, .infinity] {
            var message = Sparkmesos_Worker_V1_FromWorker()
            message.progress.id = 1
            message.progress.fraction = bad
            #expect(throws: WireError.self) {
                try FromWorker(decoding: ArraySlice(try message.serializedBytes() as [UInt8]))
            }
        }
        // A fraction sent with the wrong wire type is a clear error, not a misread number.
        #expect(throws: WireError.self) { try FromWorker(decoding: [0x1A, 0x04, 0x12, 0x02, 0x00, 0x00]) }
    }

    /// ASCII strings take a shortcut past validation; anything else is still checked as UTF-8.
    @Test func stringsAreUTF8ASCIIOrNot() throws {
        func run(taskID: [UInt8]) -> [UInt8] {
            // ToWorker.run { id: 1, task_id: taskID, function: "f" }
            let run: [UInt8] = [0x08, 0x01, 0x12, UInt8(taskID.count)] + taskID + [0x1A, 0x01, UInt8(ascii: "f")]
            return [0x0A, UInt8(run.count)] + run
        }
        for text in ["m-17", "", "tâche-é", "任务", "\u{7F}"] {
            guard case .run(let decoded) = try ToWorker(decoding: ArraySlice(run(taskID: Array(text.utf8)))) else {
                Issue.record("not a run")
                continue
            }
            #expect(decoded.taskID == text && decoded.function == "f")
        }
        for bad: [UInt8] in [[0xFF], [0x61, 0xC3], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0x80, 0x61]] {
            do {
                _ = try ToWorker(decoding: ArraySlice(run(taskID: bad)))
                Issue.record("\(bad) was taken for UTF-8")
            } catch {
                #expect(error.description == "malformed worker message: run.task_id is not UTF-8")
            }
        }
    }

    @Test func garbageIsRejected() {
        #expect(throws: WireError.self) { try FromWorker(decoding: ArraySlice(Array("garbage".utf8))) }
        #expect(throws: WireError.self) { try FromWorker(decoding: [0x12, 0x05, 0x08]) }
        var decoder = FrameDecoder()
        decoder.feed(Array("12x\n".utf8))
        #expect(throws: WireError.self) { try decoder.next() }
    }

    /// A reader's buffers (the SDK's pipe reader feeds raw buffers) give the same frames as
    /// arrays, in reads of every size.
    @Test func rawBuffersAndArraysGiveTheSameFrames() throws {
        let payloads: [[UInt8]] = [Array("a".utf8), [], Array(repeating: 9, count: 1000), Array("last".utf8)]
        var stream: [UInt8] = []
        for payload in payloads { Frame.append(payload, to: &stream) }
        for size in [1, 2, 7, 64, stream.count] {
            var raw = FrameDecoder()
            var array = FrameDecoder()
            var fromRaw: [[UInt8]] = []
            var fromArray: [[UInt8]] = []
            var offset = 0
            while offset < stream.count {
                let end = min(offset + size, stream.count)
                stream[offset..<end].withUnsafeBytes { raw.feed($0) }
                array.feed(stream[offset..<end])
                while let frame = try raw.next() { fromRaw.append(Array(frame)) }
                while let frame = try array.next() { fromArray.append(Array(frame)) }
                offset = end
            }
            #expect(fromRaw == payloads, "reads of \(size) bytes")
            #expect(fromArray == payloads, "reads of \(size) bytes")
            #expect(raw.pendingByteCount == 0)
        }
    }

    /// Byte at a time, the SDK's decoder and the executor's RecordIO decoder see the same frames.
    @Test func framingAgreesByteAtATime() throws {
        let payloads: [[UInt8]] = [[], Array("hello".utf8), Array(repeating: 7, count: 300)]
        var stream: [UInt8] = []
        for payload in payloads { Frame.append(payload, to: &stream) }
        var decoder = FrameDecoder()
        var frames: [[UInt8]] = []
        for byte in stream {
            decoder.feed([byte])
            while let frame = try decoder.next() { frames.append(Array(frame)) }
        }
        #expect(frames == payloads)
        var recordIO = RecordIODecoder()
        var buffer = ByteBuffer(bytes: stream)
        var records: [[UInt8]] = []
        while let record = try recordIO.decode(buffer: &buffer) { records.append(Array(record.readableBytesView)) }
        #expect(records == payloads)
    }

    @Test func workerPathsResolveAgainstThePackageRoot() throws {
        #expect(try WorkerPoolConfigurationResolve.resolve("/opt/w", root: nil) == "/opt/w")
        #expect(try WorkerPoolConfigurationResolve.resolve("bin/w", root: "/spark") == "/spark/bin/w")
        #expect(try WorkerPoolConfigurationResolve.resolve("./bin/w", root: "/spark/") == "/spark/bin/w")
        #expect(throws: (any Error).self) { try WorkerPoolConfigurationResolve.resolve("bin/w", root: nil) }
        #expect(throws: (any Error).self) { try WorkerPoolConfigurationResolve.resolve(nil, root: "/spark") }
    }
}

enum WorkerPoolConfigurationResolve {
    static func resolve(_ property: String?, root: String?) throws -> String {
        try WorkerPoolConfiguration.resolveProgram(property, packageRoot: root)
    }
}
