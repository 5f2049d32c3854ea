import CArchive

#if canImport(Glibc)
    import Glibc
#endif

/// Builds real archives at test time with libarchive's writer (no checked-in binaries), including
/// the malicious ones a fetcher must refuse: the writer stores names and link targets as given.
struct TestArchive {
    enum Entry {
        case file(String, [UInt8], mode: Int32 = 0o644)
        case directory(String)
        case symlink(String, target: String)
        case hardlink(String, target: String)
        /// A file of `size` zero bytes (compresses to almost nothing: a bomb).
        case zeros(String, size: Int)
        /// A file of `size` bytes repeating a 4 KiB random block: compresses about a hundred to one and
        /// takes real space on tmpfs (zeros are written sparse). Only tar declares its size: in a zip
        /// it is written as a stream, and a plain .gz has none.
        case pattern(String, size: Int)
    }

    enum Format { case tar, zip, raw }
    enum Filter { case none, gzip, bzip2, xz }

    var entries: [Entry]
    var format: Format = .tar
    var filter: Filter = .gzip

    /// The archive's bytes.
    func bytes() -> [UInt8] {
        let archive = archive_write_new()!
        defer { archive_write_free(archive) }
        switch format {
        case .tar: archive_write_set_format_pax_restricted(archive)
        case .zip: archive_write_set_format_zip(archive)
        case .raw: archive_write_set_format_raw(archive)
        }
        switch filter {
        case .none: archive_write_add_filter_none(archive)
        case .gzip: archive_write_add_filter_gzip(archive)
        case .bzip2: archive_write_add_filter_bzip2(archive)
        case .xz: archive_write_add_filter_xz(archive)
        }
        archive_write_set_bytes_in_last_block(archive, 1)
        let capacity = 64 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var used = 0
        precondition(archive_write_open_memory(archive, buffer, capacity, &used) == ARCHIVE_OK)
        for item in entries {
            let entry = archive_entry_new()!
            defer { archive_entry_free(entry) }
            var data: [UInt8] = []
            var filler = 0
            var block = [UInt8](repeating: 0, count: 1 << 16)
            switch item {
            case .file(let name, let bytes, let mode):
                archive_entry_set_pathname(entry, name)
                archive_entry_set_filetype(entry, 0o100000)
                archive_entry_set_perm(entry, mode_t(mode))
                archive_entry_set_size(entry, la_int64_t(bytes.count))
                data = bytes
            case .directory(let name):
                archive_entry_set_pathname(entry, name)
                archive_entry_set_filetype(entry, 0o040000)
                archive_entry_set_perm(entry, 0o755)
            case .symlink(let name, let target):
                archive_entry_set_pathname(entry, name)
                archive_entry_set_filetype(entry, 0o120000)
                archive_entry_set_perm(entry, 0o777)
                archive_entry_set_symlink(entry, target)
            case .hardlink(let name, let target):
                archive_entry_set_pathname(entry, name)
                archive_entry_set_filetype(entry, 0o100000)
                archive_entry_set_perm(entry, 0o644)
                archive_entry_set_hardlink(entry, target)
                archive_entry_set_size(entry, 0)
            case .zeros(let name, let size):
                archive_entry_set_pathname(entry, name)
                archive_entry_set_filetype(entry, 0o100000)
                archive_entry_set_perm(entry, 0o644)
                archive_entry_set_size(entry, la_int64_t(size))
                filler = size
            case .pattern(let name, let size):
                archive_entry_set_pathname(entry, name)
                archive_entry_set_filetype(entry, 0o100000)
                archive_entry_set_perm(entry, 0o644)
                if format == .tar { archive_entry_set_size(entry, la_int64_t(size)) }
                filler = size
                let unit = randomBytes(count: 4096, seed: 11)
                block = (0..<16).flatMap { _ in unit }
            }
            archive_entry_set_mtime(entry, 1_700_000_000, 0)
            precondition(
                archive_write_header(archive, entry) >= ARCHIVE_WARN, String(cString: archive_error_string(archive)))
            if !data.isEmpty { _ = data.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) } }
            if filler > 0 {
                var left = filler
                while left > 0 {
                    let count = min(left, block.count)
                    _ = block.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, count) }
                    left -= count
                }
            }
        }
        archive_write_close(archive)
        let base = buffer.assumingMemoryBound(to: UInt8.self)
        return Array(UnsafeBufferPointer(start: base, count: used))
    }

    /// A small Spark-like package: one top folder with bin/, jars/ and a relative symlink.
    static func sparkLike(top: String = "spark-3.5.3-bin-hadoop3", filter: Filter = .gzip, format: Format = .tar)
        -> TestArchive
    {
        TestArchive(
            entries: [
                .directory(top),
                .directory("\(top)/bin"),
                .file("\(top)/bin/spark-class", Array("#!/bin/sh\necho spark\n".utf8), mode: 0o755),
                .directory("\(top)/jars"),
                .file("\(top)/jars/spark-core.jar", Array(repeating: 7, count: 100_000)),
                .file("\(top)/RELEASE", Array("Spark 3.5.3\n".utf8)),
                .file("\(top)/jars/random.jar", randomBytes(count: 300_000, seed: 7)),
                .symlink("\(top)/jars/current.jar", target: "spark-core.jar"),
                .symlink("\(top)/bin/release", target: "../RELEASE"),
            ], format: format, filter: filter)
    }
}

/// Incompressible bytes from a fixed seed (xorshift64), so archives are big enough to cut mid-body.
func randomBytes(count: Int, seed: UInt64) -> [UInt8] {
    var state = seed | 1
    var bytes = [UInt8](repeating: 0, count: count)
    for index in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        bytes[index] = UInt8(truncatingIfNeeded: state)
    }
    return bytes
}
