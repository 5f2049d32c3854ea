@testable import SystemSupport
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

    /// The executor fixes glibc's mapping and trim thresholds, each unless the operator chose it
    /// in glibc's own variables or tunables; other tunables leave both to the executor.
    @Test func heapThresholdsAreFixedUnlessTheOperatorChoseThem() {
        let both = [
            ResidentMemory.HeapThreshold(kind: .mapping, bytes: 32 << 20),
            ResidentMemory.HeapThreshold(kind: .trim, bytes: 2 << 20),
        ]
        #expect(ResidentMemory.heapThresholds(environment: [:]) == both)
        #expect(ResidentMemory.heapThresholds(environment: ["GLIBC_TUNABLES": "glibc.malloc.tcache_count=16"]) == both)
        #expect(ResidentMemory.heapThresholds(environment: ["MALLOC_TRIM_THRESHOLD_": "4194304"]) == [both[0]])
        #expect(ResidentMemory.heapThresholds(environment: ["MALLOC_MMAP_THRESHOLD_": "131072"]) == [both[1]])
        #expect(
            ResidentMemory.heapThresholds(environment: [
                "GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.trim_threshold=0"
            ]) == [both[0]])
        #expect(
            ResidentMemory.heapThresholds(environment: [
                "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536", "MALLOC_TRIM_THRESHOLD_": "0",
            ]).isEmpty)
    }

    /// Of a range of private anonymous memory, the pages in memory that hold only zeros are given
    /// back; pages with data stay as they are, pages never touched are not read, and only whole
    /// pages inside the range count.
    @Test func zeroPagesAreGivenBackAndPagesWithDataStay() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let count = 8
        let mapping = mmap(nil, count * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        #expect(mapping != MAP_FAILED)
        let mapped = try #require(mapping == MAP_FAILED ? nil : mapping)
        defer { munmap(mapped, count * page) }
        let bytes = mapped.assumingMemoryBound(to: UInt8.self)
        // Pages 0–5 written with zeros (in memory, all zero), then data in pages 4 and 7; page 6
        // is never touched.
        memset(mapped, 0, 6 * page)
        bytes[4 * page + 100] = 42
        bytes[7 * page] = 7
        func resident() -> [Bool] {
            var vector = [UInt8](repeating: 0, count: count)
            #expect(mincore(mapped, count * page, &vector) == 0)
            return vector.map { $0 & 1 == 1 }
        }
        #expect(resident() == [true, true, true, true, true, true, false, true])

        // A range that starts inside page 0 and ends inside page 7 covers the whole pages 1–6.
        let released = ResidentMemory.releaseZeroPages(at: mapped + 1, length: count * page - 2)
        #expect(released == 4 * page)  // pages 1, 2, 3 and 5
        #expect(resident() == [true, false, false, false, true, false, false, true])
        #expect(bytes[4 * page + 100] == 42)
        #expect(bytes[7 * page] == 7)
        // Page 0 now too; then nothing more to give back.
        #expect(ResidentMemory.releaseZeroPages(at: mapped, length: count * page) == page)
        #expect(ResidentMemory.releaseZeroPages(at: mapped, length: count * page) == 0)
        // A page given back reads as zeros, and takes data again.
        #expect(bytes[2 * page] == 0)
        bytes[2 * page] = 2
        #expect(bytes[2 * page] == 2)
    }
}
