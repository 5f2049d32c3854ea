import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Where the shared package cache lives.
enum CacheDirectory {
    static let defaultPath = "/var/cache/spark-mesos-executor"

    /// The configured (or default) directory if it exists or can be created and is writable;
    /// otherwise nil (fetches go straight to the sandbox) with a warning saying why.
    static func usable(_ configured: String?, logger: Logger) -> String? {
        let path = configured.flatMap { $0.isEmpty ? nil : $0 } ?? defaultPath
        if mkdir(path, 0o755) != 0 && errno != EEXIST {
            logger.warning(
                "package cache disabled: cannot create its directory",
                metadata: ["directory": "\(path)", "error": "\(String(cString: strerror(errno)))"])
            return nil
        }
        guard access(path, W_OK) == 0 else {
            logger.warning("package cache disabled: directory not writable", metadata: ["directory": "\(path)"])
            return nil
        }
        return path
    }
}
