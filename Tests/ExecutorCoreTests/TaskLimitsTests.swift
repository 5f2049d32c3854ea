import Isolation
import MesosProto
import SparkExecutor
import Testing

/// A task's own limits (`TaskInfo.limits`) as the executor reads them: what the Mesos master lets
/// through becomes the task's cgroup limits, the rest a precise error.
struct TaskLimitsTests {
    private func task(resources: [String: Double], limits: [String: Double]) -> Mesos_V1_TaskInfo {
        var task = Mesos_V1_TaskInfo()
        task.resources = resources.sorted { $0.key < $1.key }.map { name, value in
            var resource = Mesos_V1_Resource()
            resource.name = name
            resource.type = .scalar
            resource.scalar.value = value
            return resource
        }
        task.limits = limits.mapValues { value in
            var scalar = Mesos_V1_Value.Scalar()
            scalar.value = value
            return scalar
        }
        return task
    }

    @Test func limitsAboveTheRequestsAreTheCgroupsLimits() throws {
        let limited = try CgroupLimits(
            task: task(resources: ["mem": 128, "cpus": 0.5], limits: ["mem": 1024, "cpus": 2]), hardCPULimit: false)
        #expect(limited == CgroupLimits(memoryBytes: 1024 << 20, memorySoftBytes: 128 << 20, cpus: 0.5, cpuQuota: 2))
        let unlimited = try CgroupLimits(
            task: task(resources: ["mem": 128, "cpus": 0.5], limits: ["mem": .infinity, "cpus": .infinity]),
            hardCPULimit: true)
        #expect(unlimited == CgroupLimits(memoryBytes: nil, memorySoftBytes: 128 << 20, cpus: 0.5, cpuQuota: nil))
        // A limit equal to the request, and none at all, are as the resources say.
        let equal = try CgroupLimits(task: task(resources: ["mem": 64], limits: ["mem": 64]), hardCPULimit: false)
        #expect(equal == CgroupLimits(memoryBytes: 64 << 20))
        let none = try CgroupLimits(task: task(resources: ["mem": 64, "cpus": 1], limits: [:]), hardCPULimit: true)
        #expect(none == CgroupLimits(memoryBytes: 64 << 20, cpus: 1, cpuQuota: 1))
    }

    @Test(arguments: [
        (["mem": 64.0], ["mem": 32.0], "TaskInfo.limits[mem]='32.0' is malformed"),
        (["cpus": 1.0], ["cpus": -1.0], "TaskInfo.limits[cpus]='-1.0' is malformed"),
        (["cpus": 1.0], ["cpus": .nan], "TaskInfo.limits[cpus]='nan' is malformed"),
        (
            ["mem": 64.0], ["disk": 100.0],
            "TaskInfo.limits[disk]='100.0' is malformed: expected a limit of cpus or mem only"
        ),
    ])
    func limitsTheMasterWouldRefuseAreErrors(
        _ resources: [String: Double], _ limits: [String: Double], _ message: String
    ) {
        #expect {
            _ = try CgroupLimits(task: task(resources: resources, limits: limits), hardCPULimit: false)
        } throws: { error in
            "\(error)".hasPrefix(message)
        }
    }
}
