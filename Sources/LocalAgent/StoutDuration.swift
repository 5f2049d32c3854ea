/// Durations printed the way stout prints them for executor environment variables (spec §6):
/// the largest unit giving a whole number, e.g. `5secs`, `15mins`, `1500ms`, `90secs`, `1hrs`.
public enum StoutDuration {
    private static let units: [(name: String, nanoseconds: Int64)] = [
        ("weeks", 604_800_000_000_000), ("days", 86_400_000_000_000), ("hrs", 3_600_000_000_000),
        ("mins", 60_000_000_000), ("secs", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000), ("ns", 1),
    ]

    /// The stout text of `duration` (whole nanoseconds; sub-nanosecond parts are dropped).
    public static func format(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = seconds * 1_000_000_000 + attoseconds / 1_000_000_000
        if nanoseconds == 0 { return "0ns" }
        for unit in units where nanoseconds % unit.nanoseconds == 0 {
            return "\(nanoseconds / unit.nanoseconds)\(unit.name)"
        }
        return "\(nanoseconds)ns"
    }
}
