/// A JSON value that keeps what Ganeti's checks depend on and Foundation's decoders blur:
/// whether a number was written as an integer (`40123`) or not (`40123.0`), and whether a value
/// was a number or a string. Signed tuples are verified over Python's `%s` rendering of each
/// field, so these differences decide whether a MAC matches (docs/protocol.md §4.2).
public enum JSONValue: Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public static func int(_ value: Int) -> JSONValue { .number(JSONNumber(integer: Int64(value))) }
    public static func int64(_ value: Int64) -> JSONValue { .number(JSONNumber(integer: value)) }
    public static func double(_ value: Double) -> JSONValue { .number(JSONNumber(double: value)) }

    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { return a } else { return nil } }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var integerValue: Int64? { if case .number(let n) = self { return n.integer } else { return nil } }
    public var numberValue: Double? { if case .number(let n) = self { return n.double } else { return nil } }
    public var isNull: Bool { self == .null }

    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    /// Python truthiness: what `if value:` decides.
    public var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .number(let n): return (n.double ?? 0) != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return !o.isEmpty
        }
    }

    /// A short name of the JSON type, for error messages.
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number(let n): return n.integer != nil ? "integer" : "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

/// A JSON number as written. Integers are kept exactly; everything else as a Double.
public struct JSONNumber: Sendable, Equatable, Hashable {
    /// The value when the text was an integer without fraction or exponent.
    public let integer: Int64?
    public let double: Double?
    /// The text of the number as it appeared, or as it will be written.
    public let text: String

    public init(integer: Int64) {
        self.integer = integer
        self.double = Double(integer)
        self.text = String(integer)
    }

    public init(double: Double) {
        if double.rounded() == double, abs(double) < 9.0e15 {
            // Written as Python writes floats, e.g. 40123.0, so it stays distinguishable from an int.
            self.integer = nil
            self.double = double
            self.text = String(Int64(double)) + ".0"
        } else {
            self.integer = nil
            self.double = double
            self.text = String(double)
        }
    }

    init(text: String) {
        self.text = text
        let isInteger = !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" })
        self.integer = isInteger ? Int64(text) : nil
        self.double = Double(text)
    }
}
