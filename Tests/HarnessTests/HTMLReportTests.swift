import HarnessJobs
import Foundation
import Harness
import SystemSupport
import SystemTestLock
import TemporaryDirectory
import Testing

/// The HTML timeline renders in a real browser: headless Chromium (Debian's `chromium`) loads
/// the page with networking off, its DOM has a bar per task state, and a PNG is written for a
/// person to look at (the path is printed).
@Suite(.serialized, .systemTest, .needsBuilt("spark-mesos-executor"))
struct HTMLReportTests {
    static let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    /// A run of the failures-and-kills example, and its page.
    private func timeline() async throws -> (report: RunReport, page: String) {
        let job = try JobParser.load(path: HarnessTestSupport.examples + "/failures-and-kills.json")
        let report = try await HarnessTestSupport.run(job)
        return (report, HTMLReport.render(HarnessReport(runs: [report])))
    }

    @Test func timelinePageIsSelfContainedAndMarksKills() async throws {
        let page = try await timeline().page
        #expect(
            !(page.contains("http://") || page.contains("https://") || page.contains("<script")),
            "the page must be self-contained")
        #expect(page.contains("class=\"mark kill\""), "kills are marked on the timeline")
    }

    /// Chromium is one of `.ci/install-deps`' test packages (`apt-get install -y chromium`).
    @Test(.enabled(if: chromium != nil, "headless Chromium is not installed (apt-get install -y chromium)"))
    func timelineRendersInHeadlessChromium() async throws {
        let (report, page) = try await timeline()
        let chromium = try #require(Self.chromium)
        let output = HarnessTestSupport.buildDirectory + "/harness-timeline"
        let html = output + ".html"
        let png = output + ".png"
        try Data(page.utf8).write(to: URL(fileURLWithPath: html))
        try? FileManager.default.removeItem(atPath: png)
        // Chromium's profile, removed once both runs of it have ended.
        try await withTemporaryDirectory(prefix: "harness-chromium-") { profile in
            let flags = [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--proxy-server=127.0.0.1:9",
                "--user-data-dir=" + profile,
            ]
            let dom = try await run(chromium, flags + ["--dump-dom", "file://" + html])
            let bars = dom.components(separatedBy: "class=\"bar\"").count - 1
            #expect(bars >= report.tasks.count * 2, "a bar per task state")
            _ = try await run(chromium, flags + ["--window-size=1100,900", "--screenshot=" + png, "file://" + html])
            let image = try #require(FileManager.default.contents(atPath: png), "no PNG written")
            #expect(Array(image.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
            #expect(image.count > 10_000)
            print("harness timeline rendered by Chromium: \(png)")
        }
    }

    /// Runs a program to its end and returns its stdout. Chromium takes seconds, more on a busy
    /// machine: the wait is on a thread of its own, not on the cooperative pool the suites share.
    func run(_ program: String, _ arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading
        let (data, status) = await BlockingThread.run {
            let data = output.readDataToEndOfFile()
            process.waitUntilExit()
            return (data, process.terminationStatus)
        }
        #expect(status == 0, "\(program) \(arguments)")
        return String(decoding: data, as: UTF8.self)
    }
}
