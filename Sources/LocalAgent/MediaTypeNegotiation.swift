import Foundation
import MesosCodec

/// libprocess's `Request::acceptsMediaType` and the agent's choice for SUBSCRIBE:
/// JSON whenever it is acceptable at all, else protobuf, else nil (406).
enum MediaTypeNegotiation {
    /// `acceptHeader` nil means no Accept header: everything is acceptable.
    static func negotiate(acceptHeader: String?) -> WireEncoding? {
        if accepts(WireEncoding.json.contentType, acceptHeader: acceptHeader) { return .json }
        if accepts(WireEncoding.protobuf.contentType, acceptHeader: acceptHeader) { return .protobuf }
        return nil
    }

    /// The most specific matching range decides (`type/subtype`, then `type/*`, then `*/*`); q=0 excludes.
    static func accepts(_ mediaType: String, acceptHeader: String?) -> Bool {
        guard let acceptHeader else { return true }
        let ranges = parse(acceptHeader)
        let type = mediaType.split(separator: "/").first.map(String.init) ?? mediaType
        for candidate in [mediaType, type + "/*", "*/*"] {
            if let range = ranges.first(where: { $0.mediaRange == candidate }) {
                return range.quality > 0
            }
        }
        return false
    }

    private struct Range {
        var mediaRange: String
        var quality: Double
    }

    private static func parse(_ header: String) -> [Range] {
        header.split(separator: ",").compactMap { element in
            let parts = element.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let mediaRange = parts.first, !mediaRange.isEmpty else { return nil }
            var quality = 1.0
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                if pair.count == 2, pair[0] == "q", let value = Double(pair[1]) { quality = value }
            }
            return Range(mediaRange: mediaRange, quality: quality)
        }
    }
}
