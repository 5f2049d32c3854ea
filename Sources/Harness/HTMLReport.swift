import Foundation

/// One self-contained HTML page (no scripts, no fetches) picturing runs: a timeline with a bar
/// per task coloured by state over time, kills and agent restarts marked, hover details, the
/// per-task table and the summary.
public enum HTMLReport {
    /// The page for `report`.
    public static func render(_ report: HarnessReport) -> String {
        var page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>spark-mesos-executor harness</title>
            <style>\(style)</style></head><body>
            <h1>spark-mesos-executor harness <span class="\(report.passed ? "pass" : "fail")">\(report.passed ? "PASSED" : "FAILED")</span></h1>
            <p class="legend">\(legend)</p>

            """
        for run in report.runs { page += section(run) }
        page += "</body></html>\n"
        return page
    }

    static let colours: [(String, String)] = [
        ("staging", "#bdbdbd"), ("starting", "#9ecae1"), ("running", "#3182bd"), ("killing", "#fdae6b"),
        ("finished", "#31a354"), ("failed", "#de2d26"), ("killed", "#e6550d"), ("error", "#756bb1"),
        ("lost", "#252525"),
    ]

    static func colour(_ state: String) -> String {
        colours.first { $0.0 == ReportTable.short(state) }?.1 ?? "#888888"
    }

    static var legend: String {
        colours.map { "<span class=\"key\" style=\"background:\($0.1)\"></span>\($0.0)" }.joined(separator: " ")
            + " <span class=\"mark kill\">┆ kill</span> <span class=\"mark restart\">┆ agent restart</span>"
            + " <span class=\"mark shutdown\">┆ shutdown</span>"
            + " <span class=\"dot healthy\">●</span> healthy <span class=\"dot unhealthy\">●</span> unhealthy"
            + " <span class=\"dot check\">◆</span> check result"
    }

    static func section(_ run: RunReport) -> String {
        var html = "<section><h2>\(escape(run.job)) <small>\(escape(run.mode)) mode · \(escape(run.encoding))"
        html += run.checkpoint ? " · checkpointing" : ""
        html +=
            "</small></h2>\n<p class=\"summary \(run.passed ? "pass" : "fail")\">\(escape(ReportTable.summary(run)))</p>\n"
        if !run.problems.isEmpty {
            html += "<ul class=\"problems\">" + run.problems.map { "<li>\(escape($0))</li>" }.joined() + "</ul>\n"
        }
        html += timeline(run)
        html += detailTable(run)
        return html + "</section>\n"
    }

    static func timeline(_ run: RunReport) -> String {
        let label = 170.0
        let width = 1000.0
        let rowHeight = 26.0
        let rows = run.tasks.count + run.miniTasks.count
        let height = Double(rows) * rowHeight + 40
        let total = max(run.durationMs, 1)
        func x(_ ms: Double) -> Double { label + (width - label - 10) * min(max(ms, 0), total) / total }
        var svg =
            "<svg class=\"timeline\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">\n"
        for tick in 0...5 {
            let ms = total * Double(tick) / 5
            svg += "<line x1=\"\(x(ms))\" y1=\"0\" x2=\"\(x(ms))\" y2=\"\(height - 20)\" class=\"grid\"/>"
            svg +=
                "<text x=\"\(x(ms))\" y=\"\(height - 6)\" class=\"axis\">\(String(format: total < 5000 ? "%.2fs" : "%.1fs", ms / 1000))</text>\n"
        }
        for (row, task) in run.tasks.enumerated() {
            let y = Double(row) * rowHeight + 4
            let mark = task.passed && task.exactlyOnce ? "✓" : "✗"
            svg += "<text x=\"4\" y=\"\(y + 16)\" class=\"label\">\(mark) \(escape(task.id))</text>\n"
            var start = task.launchedAtMs ?? task.states.first?.atMs ?? 0
            var state = "TASK_STAGING"
            for record in task.states + [
                TaskStateRecord(state: "", atMs: run.durationMs, source: "", acknowledged: true)
            ] {
                if record.atMs > start || record.state.isEmpty {
                    let end = StateName.terminal.contains(state) ? min(record.atMs, start + total * 0.006) : record.atMs
                    let tip =
                        "\(task.id): \(ReportTable.short(state)) \(String(format: "%.2f–%.2fs", start / 1000, end / 1000))"
                        + (task.states.first { $0.state == state }?.message.map { " — \($0)" } ?? "")
                    svg +=
                        "<rect class=\"bar\" data-task=\"\(escape(task.id))\" data-state=\"\(ReportTable.short(state))\" x=\"\(x(start))\" y=\"\(y + 3)\" width=\"\(max(x(end) - x(start), 3))\" height=\"\(rowHeight - 8)\" fill=\"\(colour(state))\"><title>\(escape(tip))</title></rect>\n"
                }
                if StateName.terminal.contains(state) { break }
                start = max(start, record.atMs)
                state = record.state
            }
            svg += healthMarks(task, y: y + rowHeight / 2 - 1, x: x)
        }
        for (index, miniTask) in run.miniTasks.enumerated() {
            let y = Double(run.tasks.count + index) * rowHeight + 4
            svg +=
                "<text x=\"4\" y=\"\(y + 16)\" class=\"label\">\(miniTask.passed ? "✓" : "✗") \(escape(miniTask.id))</text>\n"
            guard let sent = miniTask.sentAtMs else { continue }
            let end = miniTask.endedAtMs ?? run.durationMs
            let state = "TASK_" + (miniTask.actual ?? "LOST")
            let tip =
                "\(miniTask.id) (\(miniTask.function)): \(miniTask.actual?.lowercased() ?? "no result")"
                + (miniTask.error.map { " — \($0)" } ?? "")
                + (miniTask.resent.map { "; sent again \($0)× after an agent restart" } ?? "")
            svg +=
                "<rect class=\"bar mini\" data-task=\"\(escape(miniTask.id))\" x=\"\(x(sent))\" y=\"\(y + 3)\" width=\"\(max(x(end) - x(sent), 3))\" height=\"\(rowHeight - 8)\" fill=\"\(colour(state))\"><title>\(escape(tip))</title></rect>\n"
        }
        for step in run.log.steps {
            let kind: String
            switch step.kind {
            case .kill: kind = "kill"
            case .restartAgent: kind = "restart"
            case .shutdown: kind = "shutdown"
            default: continue
            }
            svg +=
                "<line class=\"mark \(kind)\" x1=\"\(x(step.atMs))\" y1=\"0\" x2=\"\(x(step.atMs))\" y2=\"\(height - 20)\"><title>\(escape(step.detail)) at \(String(format: "%.2fs", step.atMs / 1000))</title></line>\n"
        }
        return svg + "</svg>\n"
    }

    /// A dot on the task's bar at each health update (green healthy, red unhealthy) and a diamond
    /// at each check result.
    static func healthMarks(_ task: TaskReport, y: Double, x: (Double) -> Double) -> String {
        var svg = ""
        for record in task.states {
            let at = String(format: "%.2fs", record.atMs / 1000)
            if let check = record.check {
                let cx = x(record.atMs)
                svg +=
                    "<path class=\"check\" data-task=\"\(escape(task.id))\" d=\"M\(cx) \(y - 5) L\(cx + 5) \(y) L\(cx) \(y + 5) L\(cx - 5) \(y) Z\"><title>\(escape(task.id)): check \(escape(check)) at \(at)</title></path>\n"
            } else if let healthy = record.healthy {
                let word = healthy ? "healthy" : "unhealthy"
                svg +=
                    "<circle class=\"health \(word)\" data-task=\"\(escape(task.id))\" cx=\"\(x(record.atMs))\" cy=\"\(y)\" r=\"4.5\"><title>\(escape(task.id)): \(word) at \(at)\(record.message.map { " — \(escape($0))" } ?? "")</title></circle>\n"
            }
        }
        return svg
    }

    static func detailTable(_ run: RunReport) -> String {
        var html =
            "<table><tr><th></th><th>task</th><th>kind</th><th>states</th><th>time</th><th>result / error</th><th>exit</th></tr>\n"
        for task in run.tasks {
            let states = task.states.map { state in
                "<span style=\"color:\(colour(state.state))\">\(ReportTable.short(state.state))</span>"
                    + String(format: " <small>%.2fs</small>", state.atMs / 1000)
            }.joined(separator: " → ")
            let detail = (task.actual == "TASK_FINISHED" ? task.result : task.error) ?? task.result ?? ""
            html +=
                "<tr class=\"\(task.passed ? "pass" : "fail")\"><td>\(task.passed && task.exactlyOnce ? "✓" : "✗")</td><td>\(escape(task.id))</td><td>\(task.kind)</td><td>\(states)</td>"
            html +=
                "<td>\(task.durationMs.map(ReportTable.seconds) ?? "-")</td><td>\(escape(detail))</td><td>\(escape(task.exit ?? ""))</td></tr>\n"
        }
        for miniTask in run.miniTasks {
            html +=
                "<tr class=\"\(miniTask.passed ? "pass" : "fail")\"><td>\(miniTask.passed ? "✓" : "✗")</td><td>\(escape(miniTask.id))</td><td>mini:\(escape(miniTask.function))</td>"
            html +=
                "<td>\(escape(miniTask.actual?.lowercased() ?? "no result"))</td><td></td><td>\(escape(miniTask.error ?? miniTask.result ?? ""))</td><td></td></tr>\n"
        }
        return html + "</table>\n"
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static let style = """
        body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fff}
        h1 span,.summary{font-weight:600} .pass{color:#1b7a33} .fail{color:#b3261e}
        h2 small{font-weight:400;color:#666} section{margin-bottom:40px}
        .legend .key{display:inline-block;width:12px;height:12px;margin:0 4px 0 10px;vertical-align:middle}
        svg.timeline{border:1px solid #ddd;background:#fafafa;display:block;margin:8px 0}
        .grid{stroke:#e3e3e3} .axis{font-size:11px;fill:#666;text-anchor:middle} .label{font-size:12px;fill:#222}
        line.mark{stroke-width:2;stroke-dasharray:4 3} .mark.kill{stroke:#e6550d;color:#e6550d}
        .mark.restart{stroke:#6a51a3;color:#6a51a3} .mark.shutdown{stroke:#444;color:#444}
        table{border-collapse:collapse;margin-top:8px} td,th{border-bottom:1px solid #eee;padding:3px 8px;text-align:left}
        tr.fail td{background:#fff1f0} .problems{color:#b3261e}
        circle.health{stroke:#fff;stroke-width:1.5} circle.healthy{fill:#31a354} circle.unhealthy{fill:#de2d26}
        path.check{fill:#fdd835;stroke:#555;stroke-width:1} .dot.healthy{color:#31a354} .dot.unhealthy{color:#de2d26}
        .dot.check{color:#c9a800}
        """
}
