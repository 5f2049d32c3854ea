/// How the executor bounds a task's or worker's `stdout`/`stderr`: the live file holds at most
/// `maximumFileBytes`; when the next output would not fit it is renamed `<name>.1` (older ones
/// shift to `.2` … and the oldest beyond `rotatedFiles` is deleted) and a new live file starts.
/// A stream therefore never keeps more than `maximumFileBytes × (rotatedFiles + 1)` bytes.
public struct LogRotation: Sendable, Equatable, CustomStringConvertible {
    /// The most bytes one file may hold (at least 4 KiB).
    public var maximumFileBytes: Int
    /// How many rotated files (`.1` newest … `.N` oldest) are kept besides the live file.
    public var rotatedFiles: Int

    /// 10 MiB per file (Mesos's logrotate logger's `max_stdout_size` default) and 5 rotated files.
    public static let `default` = LogRotation(maximumFileBytes: 10 * 1024 * 1024, rotatedFiles: 5)

    /// The smallest `maximumFileBytes` accepted: a page, as Mesos requires.
    public static let minimumFileBytes = 4096

    public init(maximumFileBytes: Int, rotatedFiles: Int) {
        self.maximumFileBytes = max(Self.minimumFileBytes, maximumFileBytes)
        self.rotatedFiles = max(0, rotatedFiles)
    }

    /// The most bytes one stream keeps on disk.
    public var maximumStreamBytes: Int { maximumFileBytes * (rotatedFiles + 1) }

    public var description: String {
        "\(Self.format(maximumFileBytes)) per file, \(rotatedFiles) rotated file\(rotatedFiles == 1 ? "" : "s") kept"
    }

    /// Parses a size as Mesos writes one: an integer with a unit `B`, `KB`, `MB`, `GB` or `TB`
    /// (binary multiples, any case; `KiB`… and a bare byte count are accepted too). nil when malformed.
    public static func parseSize(_ text: String) -> Int? {
        let trimmed = text.trimmingSpaces
        let digits = trimmed.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, let number = Int(digits) else { return nil }
        let multiplier: Int
        switch trimmed.dropFirst(digits.count).trimmingSpaces.lowercased() {
        case "", "b": multiplier = 1
        case "kb", "kib", "k": multiplier = 1 << 10
        case "mb", "mib", "m": multiplier = 1 << 20
        case "gb", "gib", "g": multiplier = 1 << 30
        case "tb", "tib", "t": multiplier = 1 << 40
        default: return nil
        }
        let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// `bytes` with the largest binary unit that divides it.
    public static func format(_ bytes: Int) -> String {
        for (unit, size) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] where bytes % size == 0 {
            return "\(bytes / size) \(unit)"
        }
        return "\(bytes) B"
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String { String(self).trimmingSpaces }
}
