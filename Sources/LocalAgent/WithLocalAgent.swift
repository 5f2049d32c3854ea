/// Runs a ``LocalAgent`` listening on loopback for the duration of `body`, then stops it and
/// closes every connection.
///
/// ```swift
/// try await withLocalAgent(configuration) { agent in
///     let environment = await agent.environment()
///     // start the executor with `environment`, then:
///     try await agent.waitUntil("subscribed") { $0.executorStatus == .subscribed }
/// }
/// ```
public func withLocalAgent<Result>(
    _ configuration: LocalAgentConfiguration = LocalAgentConfiguration(),
    isolation: isolated (any Actor)? = #isolation,
    _ body: (LocalAgent) async throws -> Result
) async throws -> Result {
    let agent = LocalAgent(configuration: configuration)
    try await agent.bind()
    return try await withThrowingTaskGroup(of: Void.self, returning: Result.self) { group in
        group.addTask { await agent.run() }
        defer { group.cancelAll() }
        return try await body(agent)
    }
}
