import Engine
import NBD
import TestSupport
import Testing

// The planner's arithmetic, on extents written by hand. The copy itself is tested against real servers.
@Suite struct ExtentPlanTests {
    let mib: UInt64 = 1 << 20

    func data(_ offset: UInt64, _ length: UInt64, dirty: Bool = true) -> SourceExtent {
        SourceExtent(offset: offset, length: length, content: .data, isDirty: dirty)
    }

    func zero(_ offset: UInt64, _ length: UInt64, dirty: Bool = true) -> SourceExtent {
        SourceExtent(offset: offset, length: length, content: .zero, isDirty: dirty)
    }

    @Test func fullCopySkipsZerosAndCutsDataAtRequestBoundaries() {
        let plan = ExtentPlan(
            extents: [data(0, 3 * mib / 2), zero(3 * mib / 2, mib / 2), data(2 * mib, 100)],
            mode: .full, requestSize: Int(mib))
        #expect(
            plan.operations == [
                PlannedOperation(offset: 0, length: mib, action: .copy),
                PlannedOperation(offset: mib, length: mib / 2, action: .copy),
                PlannedOperation(offset: 2 * mib, length: 100, action: .copy),
            ])
        #expect(plan.extentCount == 2)
        #expect(plan.copyBytes == 3 * mib / 2 + 100)
        #expect(plan.zeroBytes == 0)
    }

    @Test func incrementalCopiesDirtyDataZerosDirtyZerosAndSkipsClean() {
        let plan = ExtentPlan(
            extents: [
                data(0, 4096, dirty: false), data(4096, 4096), zero(8192, 65536), zero(73728, 4096, dirty: false),
                data(77824, 1, dirty: true),
            ],
            mode: .incremental, requestSize: Int(mib))
        #expect(
            plan.operations == [
                PlannedOperation(offset: 4096, length: 4096, action: .copy),
                PlannedOperation(offset: 8192, length: 65536, action: .zero),
                PlannedOperation(offset: 77824, length: 1, action: .copy),
            ])
        #expect(plan.zeroBytes == 65536)
    }

    @Test func requestsStayAlignedWhenAnExtentStartsUnaligned() {
        let plan = ExtentPlan(extents: [data(mib - 10, 2 * mib + 20)], mode: .full, requestSize: Int(mib))
        #expect(plan.operations.map(\.offset) == [mib - 10, mib, 2 * mib, 3 * mib])
        #expect(plan.operations.map(\.length) == [10, mib, mib, 10])
        #expect(plan.operations.allSatisfy { $0.length <= mib })
    }

    @Test func adjacentExtentsWithTheSameActionAreMerged() {
        // In a full copy the dirty flag does not matter, so these are one extent.
        let plan = ExtentPlan(
            extents: [data(0, 4096, dirty: false), data(4096, 4096)], mode: .full, requestSize: 65536)
        #expect(plan.operations == [PlannedOperation(offset: 0, length: 8192, action: .copy)])
        #expect(plan.extentCount == 1)
    }

    @Test func emptyExtentsPlanNothing() {
        #expect(ExtentPlan(extents: [], mode: .full, requestSize: 4096).operations.isEmpty)
        #expect(ExtentPlan(extents: [data(0, 0)], mode: .incremental, requestSize: 4096).operations.isEmpty)
    }
}

@Suite struct ExtentMergeTests {
    func ext(_ offset: UInt64, _ length: UInt64, _ flags: UInt32) -> BlockStatusExtent {
        BlockStatusExtent(offset: offset, length: length, flags: flags)
    }

    @Test func mergesAllocationAndDirtyBoundaries() {
        let allocation = [ext(0, 100, 0), ext(100, 200, AllocationFlags.zero | AllocationFlags.hole)]
        let dirty = [ext(0, 50, 0), ext(50, 150, DirtyBitmapFlags.dirty), ext(200, 100, 0)]
        let merged = SourceExtent.merge(allocation: allocation, dirty: dirty, range: 0..<300)
        #expect(
            merged == [
                SourceExtent(offset: 0, length: 50, content: .data, isDirty: false),
                SourceExtent(offset: 50, length: 50, content: .data, isDirty: true),
                SourceExtent(offset: 100, length: 100, content: .zero, isDirty: true),
                SourceExtent(offset: 200, length: 100, content: .zero, isDirty: false),
            ])
    }

    @Test func holeWithoutZeroFlagIsData() {
        // NBD_STATE_HOLE alone does not promise zeros, so the range must be read.
        let merged = SourceExtent.merge(allocation: [ext(0, 10, AllocationFlags.hole)], dirty: nil, range: 0..<10)
        #expect(merged == [SourceExtent(offset: 0, length: 10, content: .data, isDirty: true)])
    }

    @Test func missingContextsMeanDataAndDirty() {
        let merged = SourceExtent.merge(allocation: nil, dirty: nil, range: 5..<25)
        #expect(merged == [SourceExtent(offset: 5, length: 20, content: .data, isDirty: true)])
    }

    @Test func mergedExtentsCoverTheRangeExactly() {
        let allocation = (0..<50).map { ext(UInt64($0) * 7, 7, $0 % 3 == 0 ? AllocationFlags.zero : 0) }
        let dirty = (0..<35).map { ext(UInt64($0) * 10, 10, UInt32($0 % 2)) }
        let merged = SourceExtent.merge(allocation: allocation, dirty: dirty, range: 0..<350)
        #expect(merged.first?.offset == 0)
        #expect(merged.last?.end == 350)
        for (a, b) in zip(merged, merged.dropFirst()) { #expect(a.end == b.offset) }
    }
}

// Planning for a target with clusters: every operation covers whole clusters.
@Suite struct ClusterAlignedPlanTests {
    let cluster: UInt64 = 65536

    func extent(_ offset: UInt64, _ length: UInt64, _ content: SourceExtent.Content, dirty: Bool) -> SourceExtent {
        SourceExtent(offset: offset, length: length, content: content, isDirty: dirty)
    }

    @Test func dirtyDataWidensToWholeClusters() {
        let extents = [
            extent(0, 65535, .data, dirty: false), extent(65535, 3, .data, dirty: true),
            extent(65538, 4 * cluster - 65538, .data, dirty: false),
        ]
        let plan = ExtentPlan(extents: extents, mode: .incremental, requestSize: 1 << 20, granularity: Int(cluster))
        #expect(plan.operations == [PlannedOperation(offset: 0, length: 2 * cluster, action: .copy)])
    }

    @Test func dirtyZerosKeepWholeClustersAndCopyTheirPartialEnds() {
        // Zeros from 1000 to 3 clusters + 1000: cluster 0 and 3 are partly zero, so they are copied.
        let extents = [
            extent(0, 1000, .data, dirty: false), extent(1000, 3 * cluster, .zero, dirty: true),
            extent(3 * cluster + 1000, cluster - 1000, .data, dirty: false),
        ]
        let plan = ExtentPlan(extents: extents, mode: .incremental, requestSize: 1 << 20, granularity: Int(cluster))
        #expect(
            plan.operations == [
                PlannedOperation(offset: 0, length: cluster, action: .copy),
                PlannedOperation(offset: cluster, length: 2 * cluster, action: .zero),
                PlannedOperation(offset: 3 * cluster, length: cluster, action: .copy),
            ])
    }

    @Test func aZeroRangeInsideOneClusterIsCopied() {
        let extents = [
            extent(0, 100, .data, dirty: false), extent(100, 200, .zero, dirty: true),
            extent(300, cluster - 300, .data, dirty: false),
        ]
        let plan = ExtentPlan(extents: extents, mode: .incremental, requestSize: 1 << 20, granularity: Int(cluster))
        #expect(plan.operations == [PlannedOperation(offset: 0, length: cluster, action: .copy)])
    }

    @Test func theLastPartialClusterEndsAtTheDisksEnd() {
        let end = 3 * cluster + 512
        let extents = [extent(0, end - 10, .zero, dirty: true), extent(end - 10, 10, .data, dirty: true)]
        let plan = ExtentPlan(extents: extents, mode: .incremental, requestSize: 1 << 20, granularity: Int(cluster))
        #expect(
            plan.operations == [
                PlannedOperation(offset: 0, length: 3 * cluster, action: .zero),
                PlannedOperation(offset: 3 * cluster, length: 512, action: .copy),
            ])
        let zeroToEnd = ExtentPlan(
            extents: [extent(0, end, .zero, dirty: true)], mode: .incremental, requestSize: 1 << 20,
            granularity: Int(cluster))
        #expect(zeroToEnd.operations == [PlannedOperation(offset: 0, length: end, action: .zero)])
    }

    @Test func widenedCopiesThatMeetAreMergedAndCutAtRequests() {
        let extents = [
            extent(10, 10, .data, dirty: true), extent(20, cluster, .data, dirty: false),
            extent(cluster + 20, 10, .data, dirty: true), extent(cluster + 30, 30 * cluster, .data, dirty: false),
        ]
        let plan = ExtentPlan(
            extents: extents, mode: .incremental, requestSize: Int(cluster), granularity: Int(cluster))
        #expect(
            plan.operations == [
                PlannedOperation(offset: 0, length: cluster, action: .copy),
                PlannedOperation(offset: cluster, length: cluster, action: .copy),
            ])
        #expect(plan.extentCount == 1)
    }

    @Test func everyOperationIsClusterAlignedOnRandomExtents() {
        var generator = SeededRandom(seed: 7)
        for _ in 0..<200 {
            var extents: [SourceExtent] = []
            var offset: UInt64 = 0
            while offset < 40 * cluster {
                let length = generator.next() % (3 * cluster) + 1
                extents.append(
                    extent(offset, length, generator.next() % 2 == 0 ? .data : .zero, dirty: generator.next() % 3 != 0))
                offset += length
            }
            let end = offset
            let plan = ExtentPlan(extents: extents, mode: .incremental, requestSize: 1 << 20, granularity: Int(cluster))
            for operation in plan.operations {
                #expect(operation.offset % cluster == 0)
                #expect(
                    (operation.offset + operation.length) % cluster == 0 || operation.offset + operation.length == end)
            }
            for (a, b) in zip(plan.operations, plan.operations.dropFirst()) { #expect(a.offset + a.length <= b.offset) }
            // Every dirty byte is covered, and dirty data is never planned as zero.
            for source in extents where source.isDirty {
                for probe in [source.offset, source.offset + source.length - 1] {
                    let covering = plan.operations.first { $0.offset <= probe && probe < $0.offset + $0.length }
                    #expect(covering != nil)
                    if source.content == .data { #expect(covering?.action == .copy) }
                }
            }
        }
    }
}
