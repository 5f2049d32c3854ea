/// Why a GET got no (complete) answer.
public enum HTTPGetError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No connection within the connect timeout.
    case connectTimeout(Duration)
    /// The connection could not be made (name resolution, refusal, TLS handshake).
    case connectFailed(String)
    /// No byte arrived for the stall timeout while one was awaited.
    case stalled(Duration)
    /// The connection closed before the answer was complete.
    case closedEarly
    /// More redirects than allowed.
    case tooManyRedirects(Int)
    /// A redirect led back to a URL already visited.
    case redirectLoop(String)
    /// A redirect without a usable `Location`.
    case badRedirect(String)
    /// The connection broke or carried something that is not HTTP/1.1.
    case connectionFailed(String)
    /// The URL's path and query hold a space or a control character, which no request line may
    /// carry (curl refuses such a URL too).
    case invalidTarget(String)

    public var description: String {
        switch self {
        case .connectTimeout(let timeout): "connect timed out after \(timeout)"
        case .connectFailed(let detail): "cannot connect: \(detail)"
        case .stalled(let timeout): "no data for \(timeout)"
        case .closedEarly: "the server closed the connection before the end of its answer"
        case .tooManyRedirects(let count): "more than \(count) redirects"
        case .redirectLoop(let url): "redirect loop at \(url)"
        case .badRedirect(let location): "redirect to an unusable location \"\(location)\""
        case .connectionFailed(let detail): "the connection failed: \(detail)"
        case .invalidTarget(let target):
            "the URL's path \"\(target.unicodeScalars.map { $0.escaped(asASCII: true) }.joined())\" holds a space or a control character"
        }
    }
}
