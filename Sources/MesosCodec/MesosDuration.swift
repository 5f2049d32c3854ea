/// Durations in the text form Mesos (stout) prints and parses (MESOS_* environment variables): a number and a unit,
/// `ns us ms secs mins hrs days weeks`, e.g. `5secs`, `15mins`, `0.5secs`. No spaces, no sign.
public enum MesosDuration {
    private static let units: [(suffix: String, nanoseconds: Double)] = [
        ("weeks", 604_800e9), ("days", 86_400e9), ("hrs", 3_600e9), ("mins", 60e9), ("secs", 1e9),
        ("ms", 1e6), ("us", 1e3), ("ns", 1),
    ]

    /// Parses stout duration text; nil when it is not one.
    public static func parse(_ text: String) -> Duration? {
        for unit in units where text.hasSuffix(unit.suffix) {
            let number = text.dropLast(unit.suffix.count)
            guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
                number.filter({ $0 == "." }).count <= 1, number.first != ".", number.last != ".",
                let value = Double(number)
            else { return nil }
            let nanoseconds = value * unit.nanoseconds
            guard nanoseconds.isFinite, nanoseconds < 9.2e18 else { return nil }
            return .nanoseconds(Int64(nanoseconds.rounded()))
        }
        return nil
    }

    /// Formats like stout: the largest unit that gives a whole number.
    public static func format(_ duration: Duration) -> String {
        let nanoseconds = duration.nanosecondsCount
        for unit in units where unit.nanoseconds > 1 {
            let size = Int64(unit.nanoseconds)
            if nanoseconds != 0, nanoseconds % size == 0 { return "\(nanoseconds / size)\(unit.suffix)" }
        }
        return "\(nanoseconds)ns"
    }
}

extension Duration {
    /// The whole duration in nanoseconds (saturating).
    public var nanosecondsCount: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product &+ attoseconds / 1_000_000_000
    }
}
