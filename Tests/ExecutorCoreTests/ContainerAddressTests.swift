import SparkExecutor
import Testing

/// `MESOS_CONTAINER_IP`: libprocess's variables first, as Mesos's default executor takes the
/// address libprocess took, else the source of the route to the agent.
struct ContainerAddressTests {
    private func find(_ environment: [String: String], agent: String?) -> String? {
        ContainerAddress.find(environment: environment, agentHostAndPort: agent) { host, port in
            "route(\(host),\(port))"
        }
    }

    @Test func libprocesssAddressesComeFirst() {
        let agent = "10.0.0.5:5051"
        #expect(
            find(["LIBPROCESS_ADVERTISE_IP": "192.0.2.7", "LIBPROCESS_IP": "10.0.0.9"], agent: agent) == "192.0.2.7")
        #expect(find(["LIBPROCESS_IP": "10.0.0.9"], agent: agent) == "10.0.0.9")
        #expect(find(["LIBPROCESS_IP": "fd00::9"], agent: agent) == "fd00::9")
        // Listening everywhere, or not an address: the route instead.
        #expect(find(["LIBPROCESS_IP": "0.0.0.0"], agent: agent) == "route(10.0.0.5,5051)")
        #expect(find(["LIBPROCESS_IP": "::"], agent: agent) == "route(10.0.0.5,5051)")
        #expect(find(["LIBPROCESS_IP": "agent-7"], agent: agent) == "route(10.0.0.5,5051)")
    }

    @Test func theRouteToTheAgentNeedsItsAddress() {
        #expect(find([:], agent: "[fd00::5]:5051") == "route(fd00::5,5051)")
        #expect(find([:], agent: "agent-7:5051") == nil)
        #expect(find([:], agent: "10.0.0.5") == nil)
        #expect(find([:], agent: "10.0.0.5:99999") == nil)
        #expect(find([:], agent: "[fd00::5]5051") == nil)
        #expect(find([:], agent: nil) == nil)
    }

    @Test func theKernelsRouteIsAsked() {
        #expect(ContainerAddress.routeSource("127.0.0.1", 5051) == "127.0.0.1")
        #expect(ContainerAddress.routeSource("not an address", 5051) == nil)
    }
}
