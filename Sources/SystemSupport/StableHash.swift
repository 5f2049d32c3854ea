/// A hash of `bytes` that is the same in every process and every run (64-bit FNV-1a; Swift's
/// `Hasher` is seeded per process), as 16 lowercase hexadecimal digits: for names made from ids
/// that must come out the same again, or tell apart ids that a safe spelling of them would merge.
public func stableHashHex(_ bytes: some Sequence<UInt8>) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}
