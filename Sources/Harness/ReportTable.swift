import Foundation

/// The end-of-run text: a table per run (one row per task and mini-task) and a summary.
public enum ReportTable {
    /// The table and summary of `report`.
    public static func render(_ report: RunReport) -> String {
        var rows: [[String]] = [["", "TASK", "KIND", "STATES", "TIME", "RESULT / ERROR", "EXIT", "PEAK MEM", "CPU"]]
        for task in report.tasks {
            let states = task.states.map { short($0.state) }.joined(separator: "→")
            rows.append([
                task.passed && task.exactlyOnce ? "✓" : "✗", task.id, task.kind,
                states.isEmpty ? "-" : states, task.durationMs.map(seconds) ?? "-",
                clip((task.actual == "TASK_FINISHED" ? task.result : task.error) ?? task.result ?? "", 48),
                task.exit ?? "", peakMemory(task.usage), cpuTime(task.usage),
            ])
        }
        for miniTask in report.miniTasks {
            let time = miniTask.sentAtMs.flatMap { sent in miniTask.endedAtMs.map { seconds($0 - sent) } }
            rows.append([
                miniTask.passed ? "✓" : "✗", miniTask.id, "mini:\(miniTask.function)",
                miniTask.actual?.lowercased() ?? "no result", time ?? "-",
                clip(miniTask.error ?? miniTask.result ?? "", 48), "", "", "",
            ])
        }
        var text = "\n\(report.job) — \(report.mode) mode, \(report.encoding)"
        text += report.checkpoint ? ", checkpointing\n" : "\n"
        text += table(rows)
        text += "\n" + summary(report) + "\n"
        for problem in report.problems { text += "  ✗ \(problem)\n" }
        if let sandbox = report.sandbox { text += "  sandbox kept at \(sandbox)\n" }
        if let log = report.executorLog {
            text += "  executor log (end of its stderr):\n"
            text += log.split(separator: "\n", omittingEmptySubsequences: false).map { "    │ \($0)" }.joined(
                separator: "\n")
            text += "\n"
        }
        return text
    }

    /// "12.3 MiB" from the usage labels.
    static func peakMemory(_ usage: [String: String]?) -> String {
        guard let bytes = usage?["usage.peak_memory_bytes"].flatMap(Double.init) else { return "" }
        return String(format: "%.1f MiB", bytes / 1_048_576)
    }

    /// "0.12s" of user plus system CPU from the usage labels.
    static func cpuTime(_ usage: [String: String]?) -> String {
        let user = usage?["usage.cpu_user_seconds"].flatMap(Double.init)
        let system = usage?["usage.cpu_system_seconds"].flatMap(Double.init)
        guard user != nil || system != nil else { return "" }
        return String(format: "%.2fs", (user ?? 0) + (system ?? 0))
    }

    /// One line: counts by end state, time, executor exit, verdict.
    public static func summary(_ report: RunReport) -> String {
        var counts: [String: Int] = [:]
        for task in report.tasks { counts[short(task.actual ?? "none"), default: 0] += 1 }
        let ends = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        var parts = ["\(report.tasks.count) task(s): \(ends.isEmpty ? "none" : ends)"]
        if !report.miniTasks.isEmpty {
            let resent = report.miniTasks.reduce(0) { $0 + ($1.resent ?? 0) }
            parts.append(
                "\(report.miniTasks.filter { $0.actual != nil }.count)/\(report.miniTasks.count) mini-task results"
                    + (resent > 0 ? " (\(resent) sent again after an agent restart)" : ""))
        }
        parts.append(seconds(report.durationMs))
        parts.append("executor \(report.executorExit)")
        if report.packageURI != nil { parts.append("package fetched \(report.packageDownloads)×") }
        parts.append("\(report.violations.count) protocol violation(s)")
        let verdict = report.interrupted ? "INTERRUPTED" : report.passed ? "PASSED" : "FAILED"
        return "\(verdict): " + parts.joined(separator: " · ")
    }

    static func short(_ state: String) -> String {
        (state.hasPrefix("TASK_") ? String(state.dropFirst(5)) : state).lowercased()
    }

    static func seconds(_ milliseconds: Double) -> String { String(format: "%.2fs", milliseconds / 1000) }

    static func clip(_ text: String, _ width: Int) -> String {
        let line = text.replacingOccurrences(of: "\n", with: " ")
        return line.count <= width ? line : String(line.prefix(width - 1)) + "…"
    }

    static func table(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.enumerated().map { index, row in
            let line = row.enumerated().map { column, cell in
                cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
            let trimmed = String(line.reversed().drop { $0 == " " }.reversed())
            return index == 0 ? trimmed + "\n" + String(repeating: "─", count: line.count) : trimmed
        }.joined(separator: "\n") + "\n"
    }
}
