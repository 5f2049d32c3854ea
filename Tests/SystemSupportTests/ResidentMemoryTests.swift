import SystemSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct ResidentMemoryTests {
    /// The test program is position-independent, so the loader relocated it from its table: the
    /// table's whole pages are unmapped, and the program goes on (what it runs, including the
    /// loader's and Swift's lazy lookups, never reads the table again).
    @Test func theRelocationTableIsUnmappedAndTheProgramGoesOn() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let released = ResidentMemory.releaseRelocationTable()
        #expect(released > 0)
        #expect(released % page == 0)
        // Released once: asking again changes nothing.
        #expect(ResidentMemory.releaseRelocationTable() == released)
        // Code not yet run (a generic instantiation, a string lookup) still runs.
        let fresh = Dictionary(uniqueKeysWithValues: (0..<100).map { ("key-\($0)", [$0, $0 * 2]) })
        #expect(fresh["key-42"] == [42, 84])
    }
}
