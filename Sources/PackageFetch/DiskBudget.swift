import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Free space a fetch leaves on the filesystem it writes to (the cache's, or the sandbox's), so that
/// a payload without a declared size (a plain `.gz`, a zip entry without one) cannot fill the agent's
/// disk for every other task on it: the larger of `bytes` and `percent` of the filesystem's size.
public struct FreeSpaceReserve: Sendable, Hashable, CustomStringConvertible {
    /// The least free space kept, in bytes.
    public var bytes: Int64
    /// The least free space kept, as a percentage of the filesystem's size.
    public var percent: Double

    public init(bytes: Int64, percent: Double = 0) {
        self.bytes = max(0, bytes)
        self.percent = min(100, max(0, percent))
    }

    /// The larger of 1 GiB and 5 % of the filesystem.
    public static let standard = FreeSpaceReserve(bytes: 1 << 30, percent: 5)
    /// No reserve: writes stop only when the filesystem is full.
    public static let none = FreeSpaceReserve(bytes: 0)

    /// The environment variable that replaces ``standard`` with a number of bytes.
    public static let environmentVariable = "SPARK_MESOS_EXECUTOR_FETCH_MIN_FREE_BYTES"

    /// The reserve on a filesystem of `size` bytes.
    public func bytes(onFilesystemOf size: Int64) -> Int64 {
        max(bytes, Int64((Double(size) * percent / 100).rounded(.up)))
    }

    public var description: String {
        guard percent > 0 else { return "\(bytes) bytes" }
        let share = percent == percent.rounded() ? String(Int(percent)) : String(percent)
        return "the larger of \(bytes) bytes and \(share) % of the filesystem"
    }
}

/// What one payload may still write: the bytes left under the request's disk cap, and the free
/// space above the reserve on the filesystem it writes to. Used by one writer thread.
struct DiskBudget {
    /// Bytes the payload may still put into the sandbox, nil without a cap.
    private var capLeft: Int64?
    /// The request's whole cap (the executor's `disk` resource), and what earlier payloads of the
    /// request took of it, for the message.
    private let cap: Int64?
    private let capName: String
    private let capTakenBefore: Int64
    private let reserve: FreeSpaceReserve
    /// Names the filesystem in messages ("the fetch cache /var/cache/…", "the sandbox /…").
    private let place: String
    /// Bytes that may be written before the free space is looked at again.
    private var unchecked: Int64 = 0
    /// Bytes written so far, scratch files included.
    private(set) var written: Int64 = 0
    /// Bytes written so far that count against the cap.
    private var counted: Int64 = 0

    /// Free space is looked at again at least this often (other writers share the filesystem).
    static let recheckBytes: Int64 = 4 << 20

    /// A budget of `left` bytes out of the request's `cap` (nil: no cap), keeping `reserve` free.
    init(
        cap: Int64?, left: Int64?, reserve: FreeSpaceReserve, place: String,
        capName: String = "the executor's disk resource"
    ) {
        self.cap = cap
        self.capName = capName
        self.capLeft = cap.map { min($0, left ?? $0) }
        self.capTakenBefore = cap.map { $0 - min($0, left ?? $0) } ?? 0
        self.reserve = reserve
        self.place = place
    }

    /// Accounts for `count` bytes about to be written under `path` (a directory on the target
    /// filesystem); returns why they may not be. `counted` is false for scratch files (a spooled zip)
    /// that never reach the sandbox: they use free space but not the disk cap.
    mutating func charge(_ count: Int, under path: String, counted: Bool = true) -> PayloadFailure? {
        let count = Int64(count)
        if counted, let left = capLeft, let cap {
            guard count <= left else {
                return .diskLimit(
                    "stopped after writing \(self.counted) bytes: the fetched files would take more than "
                        + "\(capName) allows (\(cap) bytes, \(capTakenBefore) of them taken by the URIs fetched "
                        + "before)")
            }
            capLeft = left - count
        }
        if count > unchecked {
            var info = statvfs()
            guard statvfs(path, &info) == 0 else {
                return .io("cannot read the free space of \(path): \(errnoText())")
            }
            let unit = Int64(info.f_frsize)
            let free = Int64(info.f_bavail) * unit
            let kept = reserve.bytes(onFilesystemOf: Int64(info.f_blocks) * unit)
            guard free - count >= kept else {
                return .diskLimit(
                    "stopped after writing \(written) bytes: the filesystem of \(place) has \(free) bytes free, "
                        + "and fetches keep at least \(kept) free (free-space reserve: \(reserve); "
                        + "\(FreeSpaceReserve.environmentVariable))")
            }
            unchecked = min(free - count - kept, Self.recheckBytes)
        } else {
            unchecked -= count
        }
        written += count
        if counted { self.counted += count }
        return nil
    }
}

/// A request's disk cap and what its earlier items already take in the sandbox.
struct DiskAllowance: Sendable {
    var cap: Int64?
    /// What the cap is, for messages ("the executor's disk resource").
    var name = "the executor's disk resource"
    var used: Int64 = 0

    /// The budget of the next payload.
    func budget(reserve: FreeSpaceReserve, place: String) -> DiskBudget {
        DiskBudget(cap: cap, left: cap.map { max(0, $0 - used) }, reserve: reserve, place: place, capName: name)
    }

    /// Why `bytes` more in the sandbox would go over the cap, if they would.
    func refusal(installing bytes: Int64) -> String? {
        guard let cap, used + bytes > cap else { return nil }
        return "the fetched files would take \(used + bytes) bytes in the sandbox, more than \(name) allows "
            + "(\(cap) bytes)"
    }
}
