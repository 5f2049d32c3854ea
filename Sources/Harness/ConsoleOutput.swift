import Foundation
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Live output on stdout: on a terminal, one progress line redrawn in place with events above
/// it; otherwise (CI logs) one plain line per event.
public final class ConsoleOutput: RunOutput {
    private let isTerminal: Bool
    private let lastProgress = LockedValue<String?>(nil)

    /// Output for stdout; `terminal` defaults to whether stdout is a TTY.
    public init(terminal: Bool? = nil) {
        self.isTerminal = terminal ?? (isatty(STDOUT_FILENO) == 1)
    }

    public func note(_ line: String) {
        lastProgress.withLock { progress in
            if isTerminal {
                Self.write("\r\u{1B}[2K" + line + "\n" + (progress ?? ""))
            } else {
                Self.write(line + "\n")
            }
        }
    }

    public func progress(_ progress: Progress) {
        guard isTerminal else { return }
        let line = Self.progressLine(progress)
        lastProgress.withLock { last in
            last = line
            Self.write("\r\u{1B}[2K" + line)
        }
    }

    /// Clears the live line before the final table.
    public func finish() {
        guard isTerminal else { return }
        lastProgress.withLock { last in
            last = nil
            Self.write("\r\u{1B}[2K")
        }
    }

    /// Prints `text` as it is.
    public func print(_ text: String) {
        finish()
        Self.write(text.hasSuffix("\n") ? text : text + "\n")
    }

    static func progressLine(_ progress: Progress) -> String {
        var parts = [
            "\(progress.staged) staged", "\(progress.running) running", "\(progress.finished) finished",
            "\(progress.failed) failed", "\(progress.killed) killed",
        ]
        if progress.miniTasksSent > 0 { parts.append("mini-tasks \(progress.miniTasksDone)/\(progress.miniTasksSent)") }
        for (taskID, fraction) in progress.taskProgress.prefix(3) {
            parts.append(String(format: "%@ %.0f%%", taskID, fraction * 100))
        }
        return String(
            format: "▸ %@ │ %.1f tasks/s │ %.1fs", parts.joined(separator: " · "), progress.throughput,
            progress.elapsedMs / 1000)
    }

    private static func write(_ text: String) {
        var text = text
        text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(STDOUT_FILENO, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
