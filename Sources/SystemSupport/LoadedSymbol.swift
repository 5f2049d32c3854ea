import CProcessSpawn

/// A symbol a loaded library exports, found by name at run time: for what a library exports but
/// declares in no public header.
public struct LoadedSymbol {
    /// Where it is.
    public let address: UnsafeMutableRawPointer
    /// Its size in bytes, from the library's symbol table (0 for a function or an unsized symbol).
    public let size: Int

    /// The symbol called `name`, or nil when no loaded object exports it.
    public init?(named name: String) {
        var address: UnsafeMutableRawPointer?
        var size = 0
        guard cps_find_symbol(name, &address, &size) == 0, let address else { return nil }
        self.address = address
        self.size = size
    }
}
