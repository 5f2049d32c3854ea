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
        let before = try #require(DescriptorTable.size)
        DescriptorTable.reserve(below: end)
        let after = try #require(DescriptorTable.size)
        #expect(after >= Int(end))
        #expect(after >= before)
        #expect(fcntl(end - 1, F_GETFD) == -1)
        DescriptorTable.reserve(below: 10)
        #expect(try #require(DescriptorTable.size) == after)
    }
}
