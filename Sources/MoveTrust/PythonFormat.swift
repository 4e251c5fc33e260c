/// Python's `"%s" % value` for a value decoded from JSON.
///
/// Ganeti rebuilds each signed message with `%s` from the fields it received, so the message a
/// MAC covers depends on how Python prints them: `40123` and `"40123"` print alike, `40123.0`
/// does not. Reproducing this keeps verification byte-compatible with Ganeti.
public enum PythonFormat {
    public static func percentS(_ value: JSONValue) -> String {
        switch value {
        case .string(let s): return s
        default: return repr(value)
        }
    }

    public static func repr(_ value: JSONValue) -> String {
        switch value {
        case .null: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .number(let n):
            if let i = n.integer { return String(i) }
            guard let d = n.double else { return n.text }
            if d.rounded() == d, abs(d) < 1e16 { return String(Int64(d)) + ".0" }
            return String(d)
        case .string(let s):
            let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
            var out = String(quote)
            for c in s {
                switch c {
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\t": out += "\\t"
                case "\r": out += "\\r"
                case quote: out += "\\\(quote)"
                default: out.append(c)
                }
            }
            return out + String(quote)
        case .array(let items): return "[" + items.map(repr).joined(separator: ", ") + "]"
        case .object(let members):
            return "{" + members.keys.sorted().map { "'\($0)': \(repr(members[$0] ?? .null))" }.joined(separator: ", ") + "}"
        }
    }
}
