/// Something a conforming executor would not have done, as detected by the agent.
public struct ProtocolViolation: Sendable, Hashable, CustomStringConvertible {
    /// The kinds of mistakes the agent can tell apart.
    public enum Kind: Sendable, Hashable {
        /// A request the agent answered with 4xx/501 (details in the message).
        case rejectedRequest
        /// An UPDATE carrying TASK_STAGING.
        case stagingUpdate
        /// An UPDATE whose ACKNOWLEDGED was already written to the still-open stream.
        case updateAfterAcknowledgement
        /// An UPDATE for a task whose terminal update the agent already has.
        case updateAfterTerminal
        /// An UPDATE for a task this executor was never given.
        case updateForUnknownTask
        /// An UPDATE naming another agent; the agent ignores it forever.
        case foreignAgentID
        /// TASK_KILLING although the framework lacks TASK_KILLING_STATE.
        case killingWithoutCapability
        /// SUBSCRIBE while the executor's previous stream is still open.
        case subscribeWhileSubscribed
        /// A request sent on the connection carrying the SUBSCRIBE stream; it is never answered.
        case requestOnSubscribeConnection
        /// The executor did not re-subscribe within the re-registration window after a restart.
        case missedReregistration
        /// A SUBSCRIBE carried an unacknowledged update the agent had to ignore.
        case invalidUnacknowledgedUpdate
    }

    /// What kind of mistake.
    public var kind: Kind
    /// Which call, task or stream, in words.
    public var detail: String

    /// A violation of `kind`, described by `detail`.
    public init(_ kind: Kind, _ detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "\(kind): \(detail)" }
}
