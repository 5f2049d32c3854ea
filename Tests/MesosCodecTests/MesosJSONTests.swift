import Foundation
import MesosCodec
import MesosProto
import SwiftProtobuf
import Testing

/// Every Call and Event type against hand-written Mesos JSON (stout's mapping, `MesosJSONRulesTests`).
struct MesosJSONTests {
    static let uuid = "AAECAwQFRgcICQoLDA0ODw=="  // 16 bytes, version nibble 4

    static let calls: [String: String] = [
        "SUBSCRIBE": """
        {"executor_id":{"value":"exec-1"},"framework_id":{"value":"fw-1"},"type":"SUBSCRIBE",
         "subscribe":{"unacknowledged_tasks":[{"name":"t","task_id":{"value":"t1"},"agent_id":{"value":"a1"},
           "command":{"value":"echo hi","shell":true,"environment":{"variables":[{"name":"A","value":"1","type":"VALUE"}]}},
           "kill_policy":{"grace_period":{"nanoseconds":3000000000}},"data":"aGVsbG8="}],
          "unacknowledged_updates":[{"status":{"task_id":{"value":"t1"},"state":"TASK_RUNNING",
           "source":"SOURCE_EXECUTOR","executor_id":{"value":"exec-1"},"timestamp":1764081234.5,"uuid":"\(uuid)"}}]}}
        """,
        "UPDATE": """
        {"executor_id":{"value":"exec-1"},"framework_id":{"value":"fw-1"},"type":"UPDATE",
         "update":{"status":{"task_id":{"value":"t1"},"state":"TASK_FAILED","message":"Command exited with status 1",
          "source":"SOURCE_EXECUTOR","reason":"REASON_COMMAND_EXECUTOR_FAILED","data":"AQID",
          "executor_id":{"value":"exec-1"},"timestamp":1764081234.25,"uuid":"\(uuid)"}}}
        """,
        "MESSAGE": """
        {"executor_id":{"value":"exec-1"},"framework_id":{"value":"fw-1"},"type":"MESSAGE","message":{"data":"aGk="}}
        """,
        "HEARTBEAT": """
        {"executor_id":{"value":"unused"},"framework_id":{"value":"unused"},"type":"HEARTBEAT"}
        """,
    ]

    static let events: [String: String] = [
        "SUBSCRIBED": """
        {"type":"SUBSCRIBED","subscribed":{
          "executor_info":{"executor_id":{"value":"exec-1"},"framework_id":{"value":"fw-1"},"type":"CUSTOM",
            "command":{"value":"./spark-mesos-executor","shell":true},
            "resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":1.5}},
              {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":31099}]}}],
            "data":"eyJzcGFyay5tZXNvcy5jb2Fyc2UiOiJ0cnVlIn0=",
            "shutdown_grace_period":{"nanoseconds":5000000000}},
          "framework_info":{"user":"spark","name":"pi","id":{"value":"fw-1"},"checkpoint":true,
            "capabilities":[{"type":"TASK_KILLING_STATE"},{"type":"PARTITION_AWARE"}]},
          "agent_info":{"hostname":"agent-1","port":5051,"id":{"value":"a1"}},
          "container_id":{"value":"c-1"}}}
        """,
        "LAUNCH": """
        {"type":"LAUNCH","launch":{"task":{"name":"t","task_id":{"value":"t1"},"agent_id":{"value":"a1"},
          "command":{"shell":false,"value":"/bin/echo","arguments":["echo","hi"]},
          "max_completion_time":{"nanoseconds":60000000000}}}}
        """,
        "LAUNCH_GROUP": """
        {"type":"LAUNCH_GROUP","launch_group":{"task_group":{"tasks":[
          {"name":"a","task_id":{"value":"g1"},"agent_id":{"value":"a1"}},
          {"name":"b","task_id":{"value":"g2"},"agent_id":{"value":"a1"}}]}}}
        """,
        "KILL": """
        {"type":"KILL","kill":{"task_id":{"value":"t1"},"kill_policy":{"grace_period":{"nanoseconds":1500000000}}}}
        """,
        "ACKNOWLEDGED": """
        {"type":"ACKNOWLEDGED","acknowledged":{"task_id":{"value":"t1"},"uuid":"\(uuid)"}}
        """,
        "MESSAGE": #"{"type":"MESSAGE","message":{"data":"AP8="}}"#,
        "ERROR": #"{"type":"ERROR","error":{"message":"Received unexpected '401 Unauthorized'"}}"#,
        "SHUTDOWN": #"{"type":"SHUTDOWN"}"#,
        "HEARTBEAT": #"{"type":"HEARTBEAT"}"#,
    ]

    private func jsonObject(_ bytes: some Collection<UInt8>) throws -> NSDictionary {
        try #require(JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary)
    }

    private func assertRoundTrip<M: Message & Equatable>(_ type: M.Type, _ name: String, _ text: String) throws {
        let message = try WireEncoding.json.decode(M.self, from: Array(text.utf8))
        // JSON out is the same document the agent wrote (same names, enums, numbers, base64).
        let encoded = try WireEncoding.json.encode(message)
        #expect(try jsonObject(encoded) == jsonObject(Array(text.utf8)), "\(name)")
        // Protobuf round trip preserves the message exactly.
        let binary = try WireEncoding.protobuf.encode(message)
        #expect(try WireEncoding.protobuf.decode(M.self, from: binary) == message, "\(name)")
    }

    @Test func everyCallType() throws {
        #expect(Set(Self.calls.keys) == ["SUBSCRIBE", "UPDATE", "MESSAGE", "HEARTBEAT"])
        for (name, text) in Self.calls { try assertRoundTrip(Mesos_V1_Executor_Call.self, name, text) }
    }

    @Test func everyEventType() throws {
        let types = Set(Mesos_V1_Executor_Event.TypeEnum.allCases.filter { $0 != .unknown }.map { "\($0)" })
        #expect(types.count == Self.events.count)
        for (name, text) in Self.events {
            try assertRoundTrip(Mesos_V1_Executor_Event.self, name, text)
        }
    }

    @Test func decodedValuesFollowMesosRules() throws {
        let call = try WireEncoding.json.decode(Mesos_V1_Executor_Call.self, from: Array(Self.calls["UPDATE"]!.utf8))
        #expect(call.update.status.state == .taskFailed)
        #expect(call.update.status.source == .executor)
        #expect(call.update.status.uuid == Data((0..<16).map { UInt8($0) == 6 ? 0x46 : UInt8($0) }))
        #expect(call.update.status.data == Data([1, 2, 3]))
        let subscribe = try WireEncoding.json.decode(
            Mesos_V1_Executor_Call.self, from: Array(Self.calls["SUBSCRIBE"]!.utf8))
        #expect(subscribe.subscribe.unacknowledgedTasks[0].killPolicy.gracePeriod.nanoseconds == 3_000_000_000)
    }

    @Test func encodingUsesProtoNamesEnumNamesNumbersAndPaddedBase64() throws {
        var status = Mesos_V1_TaskStatus()
        status.taskID.value = "t"
        status.state = .taskRunning
        status.source = .executor
        status.uuid = Data([0, 1, 2, 3, 4, 5, 0x46, 7, 8, 9, 10, 11, 12, 13, 14, 15])
        var policy = Mesos_V1_KillPolicy()
        policy.gracePeriod.nanoseconds = 9_000_000_000_000
        var task = Mesos_V1_TaskInfo()
        task.name = "t"
        task.taskID.value = "t"
        task.agentID.value = "a"
        task.killPolicy = policy
        let statusText = String(decoding: try WireEncoding.json.encode(status), as: UTF8.self)
        #expect(statusText.contains(#""task_id":{"value":"t"}"#), "\(statusText)")
        #expect(statusText.contains(#""state":"TASK_RUNNING""#), "\(statusText)")
        #expect(statusText.contains(#""source":"SOURCE_EXECUTOR""#), "\(statusText)")
        #expect(statusText.contains("\"uuid\":\"\(Self.uuid)\""), "\(statusText)")
        let taskText = String(decoding: try WireEncoding.json.encode(task), as: UTF8.self)
        #expect(taskText.contains(#""nanoseconds":9000000000000"#), "64-bit as a JSON number: \(taskText)")
    }

    @Test func unknownKeysAreIgnored() throws {
        let text = #"{"type":"SHUTDOWN","future_field":{"x":[1,2]},"another":"y"}"#
        #expect(try WireEncoding.json.decode(Mesos_V1_Executor_Event.self, from: Array(text.utf8)).type == .shutdown)
    }

    @Test func numericStringsAreAccepted() throws {
        let text =
            #"{"type":"KILL","kill":{"task_id":{"value":"t"},"kill_policy":{"grace_period":{"nanoseconds":"1000"}}}}"#
        let event = try WireEncoding.json.decode(Mesos_V1_Executor_Event.self, from: Array(text.utf8))
        #expect(event.kill.killPolicy.gracePeriod.nanoseconds == 1000)
    }

    @Test func camelCaseIsIgnoredSoRequiredFieldsAreMissing() {
        let text = #"{"executorId":{"value":"e"},"frameworkId":{"value":"f"},"type":"HEARTBEAT"}"#
        if let error = #expect(
            throws: (any Error).self,
            performing: { try WireEncoding.json.decode(Mesos_V1_Executor_Call.self, from: Array(text.utf8)) })
        {
            #expect((error as? CodecError)?.isMissingRequiredFields == true, "\(error)")
        }
    }

    @Test func missingRequiredFieldsAreRejectedInBothEncodings() throws {
        let text = #"{"type":"ACKNOWLEDGED","acknowledged":{"task_id":{"value":"t"}}}"#
        if let error = #expect(
            throws: (any Error).self,
            performing: { try WireEncoding.json.decode(Mesos_V1_Executor_Event.self, from: Array(text.utf8)) })
        {
            #expect((error as? CodecError)?.isMissingRequiredFields == true, "\(error)")
        }
        var event = Mesos_V1_Executor_Event()
        event.type = .acknowledged
        event.acknowledged.taskID.value = "t"
        let partial = try event.serializedBytes(partial: true) as [UInt8]
        if let error = #expect(
            throws: (any Error).self,
            performing: { try WireEncoding.protobuf.decode(Mesos_V1_Executor_Event.self, from: partial) })
        {
            #expect((error as? CodecError)?.isMissingRequiredFields == true, "\(error)")
        }
        #expect(throws: (any Error).self) { try WireEncoding.json.encode(event) }
        #expect(throws: (any Error).self) { try WireEncoding.protobuf.encode(event) }
    }

    @Test func malformedInputGivesCodecErrors() {
        for bad in ["MALFORMED_CONTENT", "{", #"{"type":7}"#, #"{"type":"SHUTDOWN","kill":"x"}"#, "[]"] {
            if let error = #expect(
                throws: (any Error).self, "\(bad)",
                performing: { try WireEncoding.json.decode(Mesos_V1_Executor_Event.self, from: Array(bad.utf8)) })
            {
                #expect(error is CodecError, "\(bad): \(error)")
            }
        }
        if let error = #expect(
            throws: (any Error).self,
            performing: {
                try WireEncoding.protobuf.decode(Mesos_V1_Executor_Event.self, from: Array("MALFORMED_CONTENT".utf8))
            })
        {
            #expect((error as? CodecError)?.isMalformedProtobuf == true, "\(error)")
        }
    }

    @Test func unknownEventTypeNumberReadsAsUnknown() throws {
        // Proto2 enums are closed: an unknown number leaves the field unset (UNKNOWN), it is not an error.
        let bytes: [UInt8] = [0x08, 0x63]  // field 1 (type) = 99
        let event = try WireEncoding.protobuf.decode(Mesos_V1_Executor_Event.self, from: bytes)
        #expect(event.type == .unknown)
    }

    @Test func contentTypesAreExact() {
        #expect(WireEncoding(contentType: "application/json") == .json)
        #expect(WireEncoding(contentType: "application/x-protobuf") == .protobuf)
        #expect(WireEncoding(contentType: "application/json; charset=utf-8") == nil)
        #expect(WireEncoding(contentType: "Application/JSON") == nil)
    }
}
