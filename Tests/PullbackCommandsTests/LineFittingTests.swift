import Engine
import Testing

@testable import PullbackCommands

@Suite("Progress lines fit the terminal, counted in columns")
struct LineFittingTests {
    @Test("columns: ASCII one each, CJK and emoji two, combining marks none")
    func columns() {
        #expect(DisplayWidth.columns(of: "vda, vdb") == 8)
        #expect(DisplayWidth.columns(of: "日本") == 4)
        #expect(DisplayWidth.columns(of: "e\u{301}") == 1)
        #expect(DisplayWidth.columns(of: "🙂x") == 3)
        #expect(DisplayWidth.columns(of: "…") == 1)
    }

    @Test("truncated: cut in columns, never through a wide character, an ellipsis at the end")
    func truncated() {
        #expect(DisplayWidth.truncated("webserver", to: 20) == "webserver")
        #expect(DisplayWidth.truncated("webserver", to: 5) == "webs…")
        #expect(DisplayWidth.truncated("日本語の名前", to: 6) == "日本…")
        #expect(DisplayWidth.truncated("日本語の名前", to: 5) == "日本…")
        #expect(DisplayWidth.truncated("abc", to: 0).isEmpty)
    }

    @Test("list: every name when they fit, else the first ones and +N more, else less")
    func list() {
        let names = ["vda", "vdb", "vdc", "vdd", "vde"]
        #expect(DisplayWidth.list(names, in: 40) == "vda, vdb, vdc, vdd, vde")
        #expect(DisplayWidth.list(names, in: 20) == "vda, vdb, +3 more")
        #expect(DisplayWidth.list(names, in: 12) == "vda, +4 more")
        #expect(DisplayWidth.list(["a-long-domain-name 20261204 vda", "x"], in: 20) == "a-long-dom…, +1 more")
        #expect(DisplayWidth.list(names, in: 7) == "+5 more")
        #expect(DisplayWidth.list(names, in: 3).isEmpty)
    }

    static let disks = (1...6).map { "web-frontend-\($0) 20261204-231500 vd\(Character(UnicodeScalar(96 + $0)!))" }

    /// Every kind of frame the bar draws, from preparing to done.
    static let snapshots: [ProgressSnapshot] = [
        ProgressSnapshot(bytesDone: 0, bytesToDo: nil, phase: .preparing),
        ProgressSnapshot(bytesDone: 0, bytesToDo: 0, phase: .startingDomain),
        ProgressSnapshot(bytesDone: 12 << 20, bytesToDo: nil, running: disks),
        ProgressSnapshot(bytesDone: 1_500 << 20, bytesToDo: 4 << 30, running: disks),
        ProgressSnapshot(bytesDone: 1_500 << 20, bytesToDo: 4 << 30, running: ["vda"]),
        ProgressSnapshot(bytesDone: 4 << 30, bytesToDo: 4 << 30),
        ProgressSnapshot(bytesDone: 0, bytesToDo: 0, running: ["vda", "vdb"]),
    ]

    @Test("every frame at every width from 1 to 200 columns stays below the width", arguments: [false, true])
    func fits(final: Bool) {
        for width in 1...200 {
            for snapshot in Self.snapshots {
                let line = ProgressBar.line(snapshot, elapsed: 3, width: width, final: final)
                #expect(
                    DisplayWidth.columns(of: line) <= max(1, width - 1), "\(width) columns: \(line)")
            }
        }
    }

    @Test("80 columns: the bar, the amounts, the rate and as many disks as fit")
    func eighty() {
        let line = ProgressBar.line(Self.snapshots[3], elapsed: 3, width: 80)
        #expect(line.hasPrefix("[#"), "\(line)")
        #expect(line.contains("1.5 GiB / 4.0 GiB  37% 500.0 MiB/s ETA 0:00:06"), "\(line)")
        #expect(line.contains("more"), "the six disks were not shortened: \(line)")
        #expect(DisplayWidth.columns(of: line) <= 79)
        let one = ProgressBar.line(Self.snapshots[4], elapsed: 3, width: 80)
        #expect(one.hasSuffix("  vda"), "\(one)")
    }

    @Test("40 columns: the bar and the amounts, without the rate")
    func forty() {
        let line = ProgressBar.line(Self.snapshots[5], elapsed: 3, width: 40)
        #expect(line.hasPrefix("[###"), "\(line)")
        #expect(line.hasSuffix("4.0 GiB / 4.0 GiB 100%"), "\(line)")
        #expect(DisplayWidth.columns(of: line) <= 39)
    }

    @Test("no bytes moving: the step's name, not 0 B / 0 B 100 %")
    func phases() {
        let starting = ProgressBar.line(Self.snapshots[1], elapsed: 2, width: 80)
        #expect(starting == "starting the shut-off domain paused...")
        let nothing = ProgressBar.line(Self.snapshots[6], elapsed: 2, width: 80)
        #expect(nothing == "nothing to copy  vda, vdb")
        let ending = ProgressBar.line(
            ProgressSnapshot(bytesDone: 8 << 20, bytesToDo: 8 << 20, phase: .endingJob), elapsed: 2, width: 80)
        #expect(ending == "ending the backup job...")
        // Once the work is done the last frame shows where it ended.
        let final = ProgressBar.line(Self.snapshots[6], elapsed: 2, width: 80, final: true)
        #expect(final.contains("0 B / 0 B 100%"), "\(final)")
    }

    @Test("a job reports its steps, then its bytes once its parts are known")
    func jobPhases() {
        let job = JobProgress()
        #expect(job.snapshot.phase == .preparing)
        job.enter(.startingJob)
        #expect(job.snapshot.phase == .startingJob)
        job.expect(parts: 1)
        let part = job.start("vda")
        #expect(job.snapshot.phase == nil && job.snapshot.running == ["vda"])
        job.finish(part)
        job.enter(.committing)
        #expect(job.snapshot.phase == .committing)
    }
}
