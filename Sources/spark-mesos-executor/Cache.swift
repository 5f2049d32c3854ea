import ArgumentParser
import ExecutorCore
import PackageFetch

/// `spark-mesos-executor cache list|prune|clear`: the shared package cache on this agent.
struct Cache: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List, prune or clear the shared package cache.",
        subcommands: [List.self, Prune.self, Clear.self])

    struct Location: ParsableArguments {
        @Option(
            name: .long,
            help: "Cache directory (default: SPARK_MESOS_EXECUTOR_CACHE_DIR, else /var/cache/spark-mesos-executor).")
        var dir: String?

        var cache: FetchCache {
            FetchCache(
                directory: dir ?? ProcessEnvironment.current()[EnvironmentVariable.cacheDirectory.name]
                    ?? CacheDirectory.defaultPath)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "One line per cached package: size, last use, in use, URI.")
        @OptionGroup var location: Location

        func run() throws {
            let entries: [CacheEntry]
            do {
                entries = try location.cache.list()
            } catch {
                throw ValidationError("\(error)")
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
            print("\(entries.count) entries, \(total) bytes in \(location.cache.directory)")
        }
    }

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Evict least recently used entries no running executor uses, down to a size.")
        @OptionGroup var location: Location
        @Option(name: .long, help: "Target size in bytes (default: the cache's cap, 8 GiB).")
        var maxBytes: Int64?

        func run() throws {
            do {
                report(try location.cache.prune(maxBytes: maxBytes))
            } catch {
                throw ValidationError("\(error)")
            }
        }
    }

    struct Clear: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove every entry no running executor uses.")
        @OptionGroup var location: Location

        func run() throws {
            do {
                report(try location.cache.clear())
            } catch {
                throw ValidationError("\(error)")
            }
        }
    }

    static func report(_ report: PruneReport) {
        print("removed \(report.removedEntries.count) entries, freed \(report.freedBytes) bytes")
        if !report.skippedInUse.isEmpty { print("kept \(report.skippedInUse.count) entries in use") }
    }
}

private func report(_ value: PruneReport) { Cache.report(value) }

extension String {
    fileprivate func padded(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
