import Foundation
import NIOCore

/// Connections a listener accepted that are not served yet. NIO drops a connection it accepted
/// while its listener was closing without handing it over, and a dropped connection whose writer
/// was never finished traps; held here until served (or closed when the agent goes down), none is
/// ever dropped that way.
final class AcceptedConnections: @unchecked Sendable {
    private let lock = NSLock()
    private var waiting: [ObjectIdentifier: ConnectionChannel] = [:]

    func hold(_ connection: ConnectionChannel) {
        lock.withLock { waiting[ObjectIdentifier(connection.channel)] = connection }
    }

    /// The connection is being served; whoever serves it closes it.
    func release(_ connection: ConnectionChannel) {
        _ = lock.withLock { waiting.removeValue(forKey: ObjectIdentifier(connection.channel)) }
    }

    /// Closes every connection still waiting to be served.
    func closeAll() async {
        let orphans = lock.withLock {
            defer { waiting.removeAll() }
            return Array(waiting.values)
        }
        for orphan in orphans { try? await orphan.executeThenClose { _, _ in } }
    }
}
