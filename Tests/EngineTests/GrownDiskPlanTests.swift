import Engine
import Testing

// An incremental plan over a disk grown since the previous point: past the previous point's end the target reads as
// zeros, so that part is planned as a full copy, whatever the bitmap says there (QEMU leaves a resize's new region
// clean).
@Suite struct GrownDiskPlanTests {
    let cluster: UInt64 = 65536

    func extent(_ offset: UInt64, _ length: UInt64, _ content: SourceExtent.Content, dirty: Bool) -> SourceExtent {
        SourceExtent(offset: offset, length: length, content: content, isDirty: dirty)
    }

    func plan(_ extents: [SourceExtent], previousEnd: UInt64?) -> ExtentPlan {
        ExtentPlan(
            extents: extents, mode: .incremental, requestSize: 1 << 20, granularity: Int(cluster),
            previousEnd: previousEnd)
    }

    @Test func cleanDataPastThePreviousEndIsCopied() {
        let extents = [
            extent(0, 2 * cluster, .data, dirty: false), extent(2 * cluster, 4 * cluster, .data, dirty: false),
            extent(6 * cluster, 2 * cluster, .zero, dirty: false),
        ]
        #expect(plan(extents, previousEnd: nil).operations.isEmpty)
        #expect(
            plan(extents, previousEnd: 4 * cluster).operations == [
                PlannedOperation(offset: 4 * cluster, length: 2 * cluster, action: .copy)
            ])
    }

    @Test func zerosPastThePreviousEndStayHolesAndDirtyZerosBeforeItAreWritten() {
        let extents = [
            extent(0, 2 * cluster, .zero, dirty: true), extent(2 * cluster, 4 * cluster, .zero, dirty: true),
            extent(6 * cluster, cluster, .data, dirty: true),
        ]
        #expect(
            plan(extents, previousEnd: 4 * cluster).operations == [
                PlannedOperation(offset: 0, length: 4 * cluster, action: .zero),
                PlannedOperation(offset: 6 * cluster, length: cluster, action: .copy),
            ])
    }

    @Test func anEndInsideAClusterCopiesThatWholeCluster() {
        // The previous point ends 512 bytes into cluster 4: its data past there widens down to the cluster's start,
        // read from the source, which holds the whole point in time.
        let extents = [extent(0, 8 * cluster, .data, dirty: false)]
        #expect(
            plan(extents, previousEnd: 4 * cluster + 512).operations == [
                PlannedOperation(offset: 4 * cluster, length: 4 * cluster, action: .copy)
            ])
        #expect(plan(extents, previousEnd: 4 * cluster + 512).copyBytes(in: 6 * cluster..<7 * cluster) == cluster)
    }

    @Test func aFullPlanIgnoresThePreviousEnd() {
        let extents = [extent(0, 2 * cluster, .data, dirty: false), extent(2 * cluster, cluster, .zero, dirty: true)]
        #expect(
            ExtentPlan(extents: extents, mode: .full, requestSize: 1 << 20, granularity: Int(cluster), previousEnd: 0)
                .operations == [PlannedOperation(offset: 0, length: 2 * cluster, action: .copy)])
    }
}
