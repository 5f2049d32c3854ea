// The JSON form of a mini-task batch as schedulers write it, read without message objects:
// `{"tasks": [{"id": "m1", "function": "echo", "payload": "<base64>", "environment": {"K": "V"}}]}`
// with any JSON whitespace and string escapes; and a closure task's `Closure`, the same object
// without its `id`. Anything else — a field twice, `null`, a key with an
// escape, base64 without padding or in the URL-safe alphabet, an unknown field, malformed JSON — is
// left to SwiftProtobuf's JSON decoder (WorkerProtocol), which accepts or refuses it with its own
// message; so this reader only has to agree with it on what it accepts, which the closure fuzz
// target checks on every batch. One difference is deliberate: a `\u` surrogate pair above plane 1
// (from `\ud840`) is composed into its scalar, where SwiftProtobuf's decoder (1.39.0, as pinned) ORs
// `0x10000` with `high << 10` and gets another one (`\ud840\udc00`, U+20000, came out U+10000),
// so that a scheduler would not find the id it sent in the results.

extension MiniTask {
    /// The mini-tasks of a JSON `sparkmesos.worker.v1.MiniTaskBatch` in its plain form (above), or
    /// nil when the batch is not in that form (it may still be valid JSON for SwiftProtobuf).
    public static func decodePlainJSONBatch(_ bytes: [UInt8]) -> [MiniTask]? {
        bytes.withUnsafeBufferPointer { buffer in
            var reader = PlainJSONReader(bytes: buffer)
            return reader.batch()
        }
    }

    /// The fields of a closure task's JSON `sparkmesos.worker.v1.Closure` in the same plain form
    /// (`{"function": …, "payload": …, "environment": {…}}`), as a mini-task without an id; nil when
    /// it is not in that form.
    public static func decodePlainJSONClosure(_ bytes: [UInt8]) -> MiniTask? {
        bytes.withUnsafeBufferPointer { buffer in
            var reader = PlainJSONReader(bytes: buffer)
            return reader.closure()
        }
    }
}

/// A cursor over JSON text that gives up (nil) on anything outside the plain form.
struct PlainJSONReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    mutating func batch() -> [MiniTask]? {
        guard take(UInt8(ascii: "{")) else { return nil }
        var tasks: [MiniTask] = []
        if !take(UInt8(ascii: "}")) {
            guard key() == .tasks, take(UInt8(ascii: "[")) else { return nil }
            if !take(UInt8(ascii: "]")) {
                repeat {
                    guard let task = task(hasID: true) else { return nil }
                    tasks.append(task)
                } while take(UInt8(ascii: ","))
                guard take(UInt8(ascii: "]")) else { return nil }
            }
            guard take(UInt8(ascii: "}")) else { return nil }
        }
        skipSpace()
        return index == bytes.count ? tasks : nil
    }

    mutating func closure() -> MiniTask? {
        guard let closure = task(hasID: false) else { return nil }
        skipSpace()
        return index == bytes.count ? closure : nil
    }

    /// The keys the plain forms have; each raw value is a bit of the set an object has seen.
    private enum Key: UInt8 {
        case tasks = 1, id = 2, function = 4, payload = 8, environment = 16
    }

    /// A known key and its colon; nil for any other key.
    private mutating func key() -> Key? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
            guard bytes[index] != UInt8(ascii: "\\") else { return nil }
            index += 1
        }
        guard index < bytes.count else { return nil }
        let name = UnsafeBufferPointer(rebasing: bytes[start..<index])
        index += 1
        guard take(UInt8(ascii: ":")) else { return nil }
        switch name.count {
        case 2 where name.elementsEqual("id".utf8): return .id
        case 5 where name.elementsEqual("tasks".utf8): return .tasks
        case 7 where name.elementsEqual("payload".utf8): return .payload
        case 8 where name.elementsEqual("function".utf8): return .function
        case 11 where name.elementsEqual("environment".utf8): return .environment
        default: return nil
        }
    }

    /// A mini-task's object, or a closure's (`hasID` false: an `id` is unknown there).
    private mutating func task(hasID: Bool) -> MiniTask? {
        guard take(UInt8(ascii: "{")) else { return nil }
        var task = MiniTask(id: "", function: "")
        var seen: UInt8 = 0
        if take(UInt8(ascii: "}")) { return task }
        repeat {
            // Each field once, and a closure has no `id`.
            guard let key = key(), hasID || key != .id, seen & key.rawValue == 0 else { return nil }
            seen |= key.rawValue
            switch key {
            case .id:
                guard let value = string() else { return nil }
                task.id = value
            case .function:
                guard let value = string() else { return nil }
                task.function = value
            case .payload:
                guard let value = base64() else { return nil }
                task.payload = value
            case .environment:
                guard let value = environment() else { return nil }
                task.environment = value
            case .tasks:
                return nil  // the batch's field, not a task's
            }
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "}")) ? task : nil
    }

    private mutating func environment() -> [String: String]? {
        guard take(UInt8(ascii: "{")) else { return nil }
        var environment: [String: String] = [:]
        if take(UInt8(ascii: "}")) { return environment }
        repeat {
            guard let name = string(), take(UInt8(ascii: ":")), let value = string(),
                environment.updateValue(value, forKey: name) == nil
            else { return nil }
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "}")) ? environment : nil
    }

    /// A JSON string: valid UTF-8, no raw control characters, the JSON escapes (a `\u` escape of a
    /// surrogate only as half of a pair).
    private mutating func string() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                let text = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                index += 1
                return text
            case UInt8(ascii: "\\"):
                return escapedString(from: start)
            case 0..<0x20:
                return nil
            default:
                index += 1
            }
        }
        return nil
    }

    /// The rest of a string from `start`, its escapes decoded.
    private mutating func escapedString(from start: Int) -> String? {
        var text = Array(UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(validating: text, as: UTF8.self)
            case 0..<0x20:
                return nil
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { return nil }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escape)
                case UInt8(ascii: "b"): text.append(0x08)
                case UInt8(ascii: "f"): text.append(0x0c)
                case UInt8(ascii: "n"): text.append(0x0a)
                case UInt8(ascii: "r"): text.append(0x0d)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "u"):
                    guard let scalar = unicodeEscape() else { return nil }
                    text.append(contentsOf: String(Character(scalar)).utf8)
                default: return nil
                }
            default:
                text.append(byte)
            }
        }
        return nil
    }

    /// The scalar of `XXXX` after `\u`, or of a surrogate pair `XXXX\uXXXX`.
    private mutating func unicodeEscape() -> Unicode.Scalar? {
        guard let high = hex4() else { return nil }
        switch high {
        case 0xd800...0xdbff:
            guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else { return nil }
            index += 2
            guard let low = hex4(), (0xdc00...0xdfff).contains(low) else { return nil }
            return Unicode.Scalar(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00))
        case 0xdc00...0xdfff:
            return nil
        default:
            return Unicode.Scalar(high)
        }
    }

    private mutating func hex4() -> UInt32? {
        guard index + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }

    /// A string of standard base64 with `=` padding to a multiple of 4 characters, decoded.
    private mutating func base64() -> [UInt8]? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while index < bytes.count, bytes[index] != UInt8(ascii: "\"") { index += 1 }
        guard index < bytes.count else { return nil }
        let digits = UnsafeBufferPointer(rebasing: bytes[start..<index])
        index += 1
        guard digits.count % 4 == 0 else { return nil }
        var padding = 0
        if digits.count >= 4 {
            if digits[digits.count - 1] == UInt8(ascii: "=") { padding += 1 }
            if padding == 1, digits[digits.count - 2] == UInt8(ascii: "=") { padding += 1 }
        }
        // Four digits at a time through a table, into storage made once: a switch and an append
        // per digit took three times as long (2.6 against 0.8 µs per KiB), and 1 KiB payloads
        // spent more of the executor's CPU here than anywhere else.
        let whole = (digits.count - padding) / 4
        var valid = true
        let output = Self.base64Values.withUnsafeBufferPointer { table in
            [UInt8](unsafeUninitializedCapacity: digits.count / 4 * 3 - padding) { output, initialized in
                func value(_ position: Int) -> UInt32 { UInt32(table[Int(digits[position])]) }
                // Any digit that is none has its 0x40 bit set (0xff).
                var invalid: UInt32 = 0
                var written = 0
                var position = 0
                for _ in 0..<whole {
                    let (a, b, c, d) = (value(position), value(position + 1), value(position + 2), value(position + 3))
                    invalid |= a | b | c | d
                    let group = a << 18 | b << 12 | c << 6 | d
                    output[written] = UInt8(truncatingIfNeeded: group >> 16)
                    output[written + 1] = UInt8(truncatingIfNeeded: group >> 8)
                    output[written + 2] = UInt8(truncatingIfNeeded: group)
                    position += 4
                    written += 3
                }
                switch padding {
                case 1:
                    // Three digits: 18 bits, two bytes; the last digit's low 2 bits must be zero.
                    let (a, b, c) = (value(position), value(position + 1), value(position + 2))
                    invalid |= a | b | c | (c & 0x3 == 0 ? 0 : 0x40)
                    let group = a << 18 | b << 12 | c << 6
                    output[written] = UInt8(truncatingIfNeeded: group >> 16)
                    output[written + 1] = UInt8(truncatingIfNeeded: group >> 8)
                    written += 2
                case 2:
                    let (a, b) = (value(position), value(position + 1))
                    invalid |= a | b | (b & 0xf == 0 ? 0 : 0x40)
                    output[written] = UInt8(truncatingIfNeeded: (a << 18 | b << 12) >> 16)
                    written += 1
                default:
                    break
                }
                valid = invalid & 0x40 == 0
                initialized = written
            }
        }
        return valid ? output : nil
    }

    /// A base64 digit's value (0–63) by its byte; 0xff for any other byte.
    private static let base64Values: [UInt8] = {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (value, digit) in JSONText.base64Digits.enumerated() {
            table[Int(digit)] = UInt8(value)
        }
        return table
    }()

    /// Skips whitespace, then takes `byte` if it is next.
    private mutating func take(_ byte: UInt8) -> Bool {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    private mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0a, 0x0d: index += 1
            default: return
            }
        }
    }
}
