import CArchive

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The libarchive functions extraction uses, loaded with `dlopen` by the first extraction.
///
/// Linked, libarchive and what it pulls in (libxml2, ICU and its 31 MB data, lzma, zstd, lz4, nettle,
/// acl) are mapped and relocated at every executor's exec, before it can subscribe, although most
/// executors never fetch an archive. `CArchive` gives only the header's types and constants.
struct LibArchive: @unchecked Sendable {
    typealias Archive = OpaquePointer
    typealias Entry = OpaquePointer

    /// The shared object, by its soname (Debian's libarchive13).
    static let soname = "libarchive.so.13"

    /// The loaded functions, or why they could not be loaded; loaded once, on first use.
    static let loaded: Result<LibArchive, LoadFailure> = Result { () throws(LoadFailure) in try LibArchive() }

    struct LoadFailure: Error, CustomStringConvertible {
        var description: String
    }

    let readNew: @convention(c) () -> Archive?
    let readFree: @convention(c) (Archive?) -> Int32
    let writeDiskNew: @convention(c) () -> Archive?
    let writeFree: @convention(c) (Archive?) -> Int32
    let readSupportFilterAll: @convention(c) (Archive?) -> Int32
    let readSupportFormatAll: @convention(c) (Archive?) -> Int32
    let readSupportFormatRaw: @convention(c) (Archive?) -> Int32
    let writeDiskSetOptions: @convention(c) (Archive?, Int32) -> Int32
    let readOpenFilename: @convention(c) (Archive?, UnsafePointer<CChar>?, Int) -> Int32
    // The callbacks spelled out: the header's callback typedefs are function types, which Swift
    // imports as Swift closures, not C function pointers.
    let readOpen:
        @convention(c) (
            Archive?, UnsafeMutableRawPointer?,
            (@convention(c) (Archive?, UnsafeMutableRawPointer?) -> Int32)?,
            (@convention(c) (Archive?, UnsafeMutableRawPointer?, UnsafeMutablePointer<UnsafeRawPointer?>?) -> Int)?,
            (@convention(c) (Archive?, UnsafeMutableRawPointer?) -> Int32)?
        ) -> Int32
    let readNextHeader: @convention(c) (Archive?, UnsafeMutablePointer<Entry?>?) -> Int32
    let format: @convention(c) (Archive?) -> Int32
    let readDataBlock:
        @convention(c) (
            Archive?, UnsafeMutablePointer<UnsafeRawPointer?>?, UnsafeMutablePointer<Int>?,
            UnsafeMutablePointer<la_int64_t>?
        ) -> Int32
    let writeHeader: @convention(c) (Archive?, Entry?) -> Int32
    let writeDataBlock: @convention(c) (Archive?, UnsafeRawPointer?, Int, la_int64_t) -> Int
    let writeFinishEntry: @convention(c) (Archive?) -> Int32
    let writeClose: @convention(c) (Archive?) -> Int32
    let errorString: @convention(c) (Archive?) -> UnsafePointer<CChar>?
    /// `archive_set_error`, printf-style: called through `carchive_set_error`.
    let setError: UnsafeMutableRawPointer
    let entrySize: @convention(c) (Entry?) -> la_int64_t
    let entrySizeIsSet: @convention(c) (Entry?) -> Int32
    let entryFiletype: @convention(c) (Entry?) -> mode_t
    let entrySetFiletype: @convention(c) (Entry?, UInt32) -> Void
    let entrySetPerm: @convention(c) (Entry?, mode_t) -> Void
    let entryPathname: @convention(c) (Entry?) -> UnsafePointer<CChar>?
    let entryPathnameUTF8: @convention(c) (Entry?) -> UnsafePointer<CChar>?
    let entrySetPathname: @convention(c) (Entry?, UnsafePointer<CChar>?) -> Void
    let entryHardlink: @convention(c) (Entry?) -> UnsafePointer<CChar>?
    let entrySetHardlink: @convention(c) (Entry?, UnsafePointer<CChar>?) -> Void
    let entrySymlink: @convention(c) (Entry?) -> UnsafePointer<CChar>?

    private init() throws(LoadFailure) {
        guard let handle = dlopen(Self.soname, RTLD_NOW | RTLD_LOCAL) else {
            let why = dlerror().map { String(cString: $0) } ?? Self.soname
            throw LoadFailure(description: "cannot load libarchive (install libarchive13): \(why)")
        }
        func load<Function>(_ name: String) throws(LoadFailure) -> Function {
            guard let symbol = dlsym(handle, name) else {
                throw LoadFailure(description: "\(Self.soname) lacks \(name)")
            }
            return unsafeBitCast(symbol, to: Function.self)
        }
        readNew = try load("archive_read_new")
        readFree = try load("archive_read_free")
        writeDiskNew = try load("archive_write_disk_new")
        writeFree = try load("archive_write_free")
        readSupportFilterAll = try load("archive_read_support_filter_all")
        readSupportFormatAll = try load("archive_read_support_format_all")
        readSupportFormatRaw = try load("archive_read_support_format_raw")
        writeDiskSetOptions = try load("archive_write_disk_set_options")
        readOpenFilename = try load("archive_read_open_filename")
        readOpen = try load("archive_read_open")
        readNextHeader = try load("archive_read_next_header")
        format = try load("archive_format")
        readDataBlock = try load("archive_read_data_block")
        writeHeader = try load("archive_write_header")
        writeDataBlock = try load("archive_write_data_block")
        writeFinishEntry = try load("archive_write_finish_entry")
        writeClose = try load("archive_write_close")
        errorString = try load("archive_error_string")
        setError = try load("archive_set_error")
        entrySize = try load("archive_entry_size")
        entrySizeIsSet = try load("archive_entry_size_is_set")
        entryFiletype = try load("archive_entry_filetype")
        entrySetFiletype = try load("archive_entry_set_filetype")
        entrySetPerm = try load("archive_entry_set_perm")
        entryPathname = try load("archive_entry_pathname")
        entryPathnameUTF8 = try load("archive_entry_pathname_utf8")
        entrySetPathname = try load("archive_entry_set_pathname")
        entryHardlink = try load("archive_entry_hardlink")
        entrySetHardlink = try load("archive_entry_set_hardlink")
        entrySymlink = try load("archive_entry_symlink")
    }

    /// The archive's error text.
    func errorText(_ archive: Archive?) -> String {
        errorString(archive).map { String(cString: $0) } ?? "unknown libarchive error"
    }
}
