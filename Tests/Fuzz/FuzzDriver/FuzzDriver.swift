import CFuzzDriver

#if canImport(Glibc)
    import Glibc
#endif

/// Runs libFuzzer on `body` with this process's arguments (libFuzzer's flags and corpus
/// directories), then exits with libFuzzer's status. SwiftPM gives every executable a `main` of
/// its own, which usually keeps libFuzzer's `main` out of the link: libFuzzer is then driven
/// through `LLVMFuzzerRunDriver`. Each target also exports `body` as `LLVMFuzzerTestOneInput`,
/// for the link where libFuzzer's `main` is the one chosen.
public func runFuzzer(_ body: @escaping @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv, body)
    exit(status)
}
