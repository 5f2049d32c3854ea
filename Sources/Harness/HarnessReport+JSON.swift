public import Foundation

extension HarnessReport {
    /// The report as `--report` writes it: JSON with snake_case keys (`duration_ms`, `data_file`,
    /// `task_id`), as job files and Mesos's own JSON spell them.
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(self)
    }

    /// Reads a report written by ``json()``.
    public init(json: Data) throws {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .custom { path in SnakeCaseKey(path.last?.stringValue ?? "") }
        self = try decoder.decode(Self.self, from: json)
    }
}

/// A snake_case key as the property it came from: `task_id` is `taskID`, `duration_ms` is `durationMs`
/// (Foundation's own conversion would read `taskId`).
private struct SnakeCaseKey: CodingKey {
    static let acronyms: Set<Substring> = ["id", "uri"]
    let stringValue: String
    var intValue: Int? { nil }

    init(_ snake: String) {
        let words = snake.split(separator: "_")
        stringValue =
            words.enumerated().map { index, word in
                if index == 0 { return String(word) }
                return Self.acronyms.contains(word) ? word.uppercased() : word.prefix(1).uppercased() + word.dropFirst()
            }.joined()
    }

    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
