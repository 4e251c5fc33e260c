/// Ganeti's rules for the names that reach a path, a command line or an OS script: instance and
/// node names (hostname syntax), OS names, NIC links and networks, tags, volume groups. A name
/// from a request is checked before it is used anywhere; a refusal names the field.
///
/// gnt-move is stricter than Ganeti in one way: no name may start with `-` (it would become an
/// option of the command it is passed to) or `.` (a hidden or parent path).
public enum NameRules {
    public enum Kind: Sendable {
        /// Instance and node names: `^[A-Za-z0-9._-]{1,255}$`, labels of at most 63
        /// characters, no empty label, no leading `-`.
        case hostname
        /// OS names (`debootstrap+default`): `[A-Za-z0-9_.+-]`, no `..`, no leading `-` or `.`.
        case osName
        /// Bridges, routing tables, OVS switches, network names: `[A-Za-z0-9_.:+-]`.
        case link
        /// Ganeti's tag syntax: `^[\w.+*/:@-]{1,128}$`.
        case tag
        /// An LVM volume group: `[A-Za-z0-9_.+-]`, not `.` or `..`, no leading `-`.
        case volumeGroup
    }

    /// The name, or a `TrustError` naming `field` and the rule it breaks.
    @discardableResult
    public static func check(_ name: String, _ kind: Kind, field: String) throws(TrustError) -> String {
        func refuse(_ why: String) -> TrustError {
            TrustError(.name, "\(field) '\(printable(name))' is not a valid \(kind.noun): \(why)")
        }
        let bytes = Array(name.utf8)
        guard !bytes.isEmpty else { throw refuse("it is empty") }
        guard bytes.count <= kind.maxLength else { throw refuse("longer than \(kind.maxLength) characters") }
        if let bad = bytes.first(where: { !kind.allows($0) }) {
            throw refuse("character '\(printable(String(decoding: [bad], as: UTF8.self)))' is not allowed (allowed: \(kind.alphabet))")
        }
        if kind != .tag {
            guard bytes[0] != UInt8(ascii: "-") else { throw refuse("it starts with '-'") }
            guard bytes[0] != UInt8(ascii: ".") else { throw refuse("it starts with '.'") }
            guard !name.contains("..") else { throw refuse("it contains '..'") }
        }
        if kind == .hostname {
            let labels = name.split(separator: ".", omittingEmptySubsequences: false)
            let trailingDot = labels.count > 1 && labels.last?.isEmpty == true
            for label in trailingDot ? labels.dropLast() : labels[...] where label.utf8.count > 63 {
                throw refuse("label '\(label.prefix(20))…' is longer than 63 characters")
            }
        }
        return name
    }

    /// True when the name satisfies the rule.
    public static func isValid(_ name: String, _ kind: Kind) -> Bool {
        (try? check(name, kind, field: "name")) != nil
    }

    /// Control characters and non-ASCII shown escaped, so an error line stays one readable line.
    public static func printable(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars.prefix(80) {
            if scalar.value >= 0x20 && scalar.value < 0x7f { out.unicodeScalars.append(scalar) } else { out += "\\u{\(String(scalar.value, radix: 16))}" }
        }
        return text.unicodeScalars.count > 80 ? out + "…" : out
    }
}

extension NameRules.Kind {
    var noun: String {
        switch self {
        case .hostname: "host name"
        case .osName: "OS name"
        case .link: "link or network name"
        case .tag: "tag"
        case .volumeGroup: "volume group name"
        }
    }

    var maxLength: Int {
        switch self {
        case .hostname: 255
        case .tag: 128
        case .osName, .link, .volumeGroup: 128
        }
    }

    var alphabet: String {
        switch self {
        case .hostname: "letters, digits, '.', '_', '-'"
        case .osName, .volumeGroup: "letters, digits, '.', '_', '+', '-'"
        case .link: "letters, digits, '.', '_', ':', '+', '-'"
        case .tag: "letters, digits, '.', '_', '+', '*', '/', ':', '@', '-'"
        }
    }

    func allows(_ byte: UInt8) -> Bool {
        let alphanumeric = (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
        if alphanumeric { return true }
        let extra: [UInt8]
        switch self {
        case .hostname: extra = Array("._-".utf8)
        case .osName, .volumeGroup: extra = Array("._+-".utf8)
        case .link: extra = Array("._:+-".utf8)
        case .tag: extra = Array("._+*/:@-".utf8)
        }
        return extra.contains(byte)
    }
}
