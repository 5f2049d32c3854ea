import Foundation
import SystemSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct DescriptorTableTests {
    /// Reserved, the table holds the numbers asked for (within the soft limit) and no descriptor is
    /// left behind; a table never shrinks, so reserving less changes nothing.
    @Test func theTableGrowsToHoldWhatIsReservedAndNothingStaysOpen() throws {
        var limit = rlimit()
        try #require(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
        let end = Int32(min(UInt64(1500), UInt64(limit.rlim_cur)))
        let before = try #require(Self.tableSize)
        DescriptorTable.reserve(below: end)
        let after = try #require(Self.tableSize)
        #expect(after >= Int(end))
        #expect(after >= before)
        #expect(fcntl(end - 1, F_GETFD) == -1)
        DescriptorTable.reserve(below: 10)
        #expect(try #require(Self.tableSize) == after)
    }

    /// How many descriptors this process's table holds now (`FDSize` of /proc/self/status).
    static var tableSize: Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("FDSize:") })
        else { return nil }
        return Int(line.dropFirst("FDSize:".count).trimmingPrefix(while: { $0 == " " || $0 == "\t" }))
    }
}
