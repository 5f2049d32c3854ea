import MesosProto

/// `health_check`, `check` and `max_completion_time` of a job's task, with Mesos's field names.
extension JobParser {
    private static let probeKeys = ["type", "command", "port", "path"]
    private static let timingKeys = ["delay_seconds", "interval_seconds", "timeout_seconds"]

    /// `{"type": "COMMAND|HTTP|HTTPS|TCP", "command"|"port"+"path", "delay_seconds", "interval_seconds",
    /// "timeout_seconds", "consecutive_failures", "grace_period_seconds"}`.
    func healthCheck(_ value: JobValue, _ path: String) throws(JobFileError) -> Mesos_V1_HealthCheck {
        let fields = try object(
            value, path, allowed: Self.probeKeys + Self.timingKeys + ["consecutive_failures", "grace_period_seconds"])
        var check = Mesos_V1_HealthCheck()
        let type = try probeType(fields, path, ["COMMAND", "HTTP", "HTTPS", "TCP"])
        switch type {
        case "COMMAND":
            check.type = .command
            check.command = try commandInfo(fields, path)
        case "TCP":
            check.type = .tcp
            check.tcp.port = try port(fields, path)
        default:
            check.type = .http
            check.http.scheme = type.lowercased()
            check.http.port = try port(fields, path)
            if let path = try urlPath(fields, path) { check.http.path = path }
        }
        try onlyWhere(type, fields, path)
        if let v = fields["delay_seconds"] { check.delaySeconds = try secondsValue(v, "\(path).delay_seconds") }
        if let v = fields["interval_seconds"] {
            check.intervalSeconds = try secondsValue(v, "\(path).interval_seconds")
        }
        if let v = fields["timeout_seconds"] { check.timeoutSeconds = try secondsValue(v, "\(path).timeout_seconds") }
        if let v = fields["grace_period_seconds"] {
            check.gracePeriodSeconds = try secondsValue(v, "\(path).grace_period_seconds")
        }
        if let v = fields["consecutive_failures"] {
            guard case .number(let number) = v, number >= 0, number <= 1_000_000, number == number.rounded() else {
                throw fail(
                    "\(path).consecutive_failures", "is \(v.kindDescription); expected a whole number of failures")
            }
            check.consecutiveFailures = UInt32(number)
        }
        return check
    }

    /// `{"type": "COMMAND|HTTP|TCP", "command"|"port"+"path", "delay_seconds", "interval_seconds", "timeout_seconds"}`.
    func check(_ value: JobValue, _ path: String) throws(JobFileError) -> Mesos_V1_CheckInfo {
        let fields = try object(value, path, allowed: Self.probeKeys + Self.timingKeys)
        var check = Mesos_V1_CheckInfo()
        let type = try probeType(fields, path, ["COMMAND", "HTTP", "TCP"])
        switch type {
        case "COMMAND":
            check.type = .command
            check.command.command = try commandInfo(fields, path)
        case "TCP":
            check.type = .tcp
            check.tcp.port = try port(fields, path)
        default:
            check.type = .http
            check.http.port = try port(fields, path)
            if let path = try urlPath(fields, path) { check.http.path = path }
        }
        try onlyWhere(type, fields, path)
        if let v = fields["delay_seconds"] { check.delaySeconds = try secondsValue(v, "\(path).delay_seconds") }
        if let v = fields["interval_seconds"] {
            check.intervalSeconds = try secondsValue(v, "\(path).interval_seconds")
        }
        if let v = fields["timeout_seconds"] { check.timeoutSeconds = try secondsValue(v, "\(path).timeout_seconds") }
        return check
    }

    /// A number of seconds greater than zero.
    func positiveSeconds(_ value: JobValue, _ path: String) throws(JobFileError) -> Duration {
        guard case .number(let number) = value, number > 0, number < 86_400 else {
            throw fail(path, "is \(value.kindDescription); expected a number of seconds above 0 and below 86400")
        }
        return .milliseconds(Int64((number * 1000).rounded()))
    }

    private func secondsValue(_ value: JobValue, _ path: String) throws(JobFileError) -> Double {
        guard case .number(let number) = value, number >= 0, number < 86_400 else {
            throw fail(path, "is \(value.kindDescription); expected a number of seconds between 0 and 86400")
        }
        return number
    }

    private func onlyWhere(_ type: String, _ fields: [String: JobValue], _ path: String) throws(JobFileError) {
        if type != "COMMAND", fields["command"] != nil {
            throw fail("\(path).command", "is only for a COMMAND check; this one is \(type)")
        }
        if type == "COMMAND", let key = ["port", "path"].first(where: { fields[$0] != nil }) {
            throw fail("\(path).\(key)", "is only for an HTTP or TCP check; this one is COMMAND")
        }
        if type == "TCP", fields["path"] != nil {
            throw fail("\(path).path", "is only for an HTTP check; this one is TCP")
        }
    }

    private func probeType(_ fields: [String: JobValue], _ path: String, _ types: [String]) throws(JobFileError)
        -> String
    {
        let names = types.joined(separator: ", ")
        guard let value = fields["type"] else { throw fail("\(path).type", "missing; expected one of \(names)") }
        guard case .string(let text) = value, types.contains(text.uppercased()) else {
            throw fail("\(path).type", "\(value.kindDescription) is not valid; expected one of \(names)")
        }
        return text.uppercased()
    }

    private func commandInfo(_ fields: [String: JobValue], _ path: String) throws(JobFileError)
        -> Mesos_V1_CommandInfo
    {
        guard let value = fields["command"] else {
            throw fail("\(path).command", "missing; expected the command a COMMAND check runs")
        }
        let spec = try command(value, "\(path).command")
        var info = Mesos_V1_CommandInfo()
        info.value = spec.value
        info.shell = spec.shell
        info.arguments = spec.arguments
        for (name, value) in spec.environment.sorted(by: { $0.key < $1.key }) {
            var variable = Mesos_V1_Environment.Variable()
            variable.name = name
            variable.value = value
            info.environment.variables.append(variable)
        }
        return info
    }

    private func port(_ fields: [String: JobValue], _ path: String) throws(JobFileError) -> UInt32 {
        guard let value = fields["port"] else { throw fail("\(path).port", "missing; expected a port 1-65535") }
        guard case .number(let number) = value, number >= 1, number <= 65535, number == number.rounded() else {
            throw fail("\(path).port", "is \(value.kindDescription); expected a port 1-65535")
        }
        return UInt32(number)
    }

    private func urlPath(_ fields: [String: JobValue], _ path: String) throws(JobFileError) -> String? {
        guard let value = fields["path"] else { return nil }
        let text = try string(value, "\(path).path")
        guard text.hasPrefix("/") else { throw fail("\(path).path", "\"\(text)\" does not start with '/'") }
        return text
    }
}
