import ExecutorCore
import PackageFetch

/// `spark-mesos-executor cache list|prune|clear`: the shared package cache on this agent. Each
/// returns the exit code: 0, or 1 with the error on standard error.
struct Cache {
    let cache: FetchCache

    /// The cache at `directory`, else `SPARK_MESOS_EXECUTOR_CACHE_DIR`, else the default.
    init(directory: String?) {
        cache = FetchCache(
            directory: directory ?? ProcessEnvironment.current()[EnvironmentVariable.cacheDirectory.name]
                ?? CacheDirectory.defaultPath)
    }

    func list() -> Int32 {
        let entries: [CacheEntry]
        do {
            entries = try cache.list()
        } catch {
            return failed(error)
        }
        print("SHA256            BYTES        LAST USED (epoch s)  IN USE  KIND     URI")
        for entry in entries.sorted(by: { $0.lastUsed > $1.lastUsed }) {
            let columns = [
                String(entry.sha256.prefix(16)).padded(18), String(entry.bytes).padded(13),
                String(entry.lastUsed).padded(21), (entry.inUse ? "yes" : "no").padded(8), entry.kind.padded(9),
                entry.uri,
            ]
            print(columns.joined())
        }
        let total = entries.reduce(Int64(0)) { $0 + $1.bytes }
        print("\(entries.count) entries, \(total) bytes in \(cache.directory)")
        return 0
    }

    /// Evicts least recently used entries no running executor uses, down to `maxBytes` (default:
    /// the cache's cap).
    func prune(maxBytes: Int64?) -> Int32 {
        do {
            report(try cache.prune(maxBytes: maxBytes))
            return 0
        } catch {
            return failed(error)
        }
    }

    /// Removes every entry no running executor uses.
    func clear() -> Int32 {
        do {
            report(try cache.clear())
            return 0
        } catch {
            return failed(error)
        }
    }

    private func report(_ report: PruneReport) {
        print("removed \(report.removedEntries.count) entries, freed \(report.freedBytes) bytes")
        if !report.skippedInUse.isEmpty { print("kept \(report.skippedInUse.count) entries in use") }
    }

    private func failed(_ error: any Error) -> Int32 {
        ProcessEnvironment.printError("Error: \(error)")
        return 1
    }
}

extension String {
    fileprivate func padded(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
