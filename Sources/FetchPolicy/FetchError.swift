/// Why a fetch failed. The text names the URI and the cause in words an operator can act on;
/// it is meant to go, unchanged, into the message of a TASK_FAILED status update.
public struct FetchError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case invalidURI
        case noPackage
        case httpStatus
        case network
        case stalled
        case checksumMismatch
        case archive
        case unsafeArchive
        case archiveTooLarge
        case diskLimit
        case hadoopMissing
        case hadoopFailed
        case localFile
        case filesystem
        case cache
        case cancelled
        case invalidSetting
    }

    private let code: Code
    /// The URI (or path) the failure is about, as configured but for a password in it (`***`).
    public let uri: String
    /// The cause, without the URI.
    public let cause: String
    /// True when retrying the same fetch later may succeed (network trouble, server errors).
    public let isTransient: Bool

    private init(_ code: Code, uri: String, cause: String, transient: Bool = false) {
        self.code = code
        self.uri = FetchURI.withoutPassword(uri)
        self.cause = cause
        self.isTransient = transient
    }

    public var description: String {
        switch code {
        case .noPackage, .cache, .invalidSetting: cause
        default: "cannot fetch \(uri): \(cause)"
        }
    }

    /// True when the payload did not match the configured sha256.
    public var isChecksumMismatch: Bool { code == .checksumMismatch }
    /// True when the archive was refused as unsafe or as a bomb.
    public var isUnsafeArchive: Bool { code == .unsafeArchive || code == .archiveTooLarge }
    /// True when the fetch stopped at the disk cap or at the free-space reserve.
    public var isDiskLimit: Bool { code == .diskLimit }
    /// The HTTP status that failed the download, if that was the cause.
    public var httpStatus: Int? { code == .httpStatus ? status : nil }
    private var status: Int = 0

    package static func invalidURI(_ uri: String, _ why: String) -> Self { Self(.invalidURI, uri: uri, cause: why) }

    package static func noPackage(home: String?) -> Self {
        let cause =
            if let home {
                "no package URI is configured (spark.executor.uri, spark.mesos.uris) and spark.mesos.executor.home "
                    + "'\(home)' does not exist on this agent; install Spark there or set spark.executor.uri"
            } else {
                "no package URI is configured and spark.mesos.executor.home is not set: set spark.executor.uri to a "
                    + "Spark package or spark.mesos.executor.home to an installed Spark"
            }
        return Self(.noPackage, uri: home ?? "", cause: cause)
    }

    package static func httpStatus(_ uri: String, status: Int, reason: String) -> Self {
        var error = Self(
            .httpStatus, uri: uri, cause: "server answered HTTP \(status) \(reason)",
            transient: status >= 500 || status == 408 || status == 429)
        error.status = status
        return error
    }

    package static func network(_ uri: String, _ cause: String) -> Self {
        Self(.network, uri: uri, cause: cause, transient: true)
    }

    package static func stalled(_ uri: String, after bytes: Int64, seconds: Double) -> Self {
        Self(
            .stalled, uri: uri,
            cause: "download stalled: no data for \(seconds) s after \(bytes) bytes (stall timeout)", transient: true)
    }

    package static func checksumMismatch(_ uri: String, expected: String, actual: String) -> Self {
        Self(
            .checksumMismatch, uri: uri,
            cause: "sha256 mismatch: expected \(expected), got \(actual); nothing was installed. "
                + "Fix the #sha256= in the URI or the file on the server")
    }

    package static func archive(_ uri: String, _ detail: String) -> Self {
        Self(.archive, uri: uri, cause: "cannot extract archive: \(detail)")
    }

    package static func unsafeArchive(_ uri: String, entry: String, _ why: String) -> Self {
        Self(.unsafeArchive, uri: uri, cause: "refused archive entry '\(entry)': \(why); nothing was installed")
    }

    package static func archiveTooLarge(_ uri: String, _ what: String) -> Self {
        Self(.archiveTooLarge, uri: uri, cause: "refused archive: \(what) (archive bomb limit); nothing was installed")
    }

    package static func diskLimit(_ uri: String, _ what: String) -> Self {
        Self(.diskLimit, uri: uri, cause: "\(what); nothing was installed")
    }

    package static func invalidSetting(_ name: String, _ value: String, expected: String) -> Self {
        Self(.invalidSetting, uri: name, cause: "\(name)='\(value)' is malformed: expected \(expected)")
    }

    package static func hadoopMissing(_ uri: String, searched: String) -> Self {
        Self(
            .hadoopMissing, uri: uri,
            cause: "this scheme needs a Hadoop client ('hadoop fs -cat') and none was found: \(searched). "
                + "Install Hadoop on the agent and set HADOOP_HOME, or use an http(s) URI")
    }

    package static func hadoopFailed(_ uri: String, _ detail: String) -> Self {
        Self(.hadoopFailed, uri: uri, cause: "hadoop fs -cat failed: \(detail)", transient: true)
    }

    package static func localFile(_ uri: String, _ detail: String) -> Self { Self(.localFile, uri: uri, cause: detail) }

    package static func filesystem(_ uri: String, _ detail: String) -> Self {
        Self(.filesystem, uri: uri, cause: detail)
    }

    package static func cache(_ directory: String, _ detail: String) -> Self {
        Self(.cache, uri: directory, cause: "fetch cache \(directory): \(detail)")
    }

    package static func cancelled(_ uri: String) -> Self {
        Self(.cancelled, uri: uri, cause: "the fetch was cancelled")
    }
}
