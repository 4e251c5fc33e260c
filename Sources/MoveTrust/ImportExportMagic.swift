import OpenSSLSupport

/// The per-disk magic (docs/protocol.md §4.1): `sha1("0" ‖ base ‖ instance ‖ index)` as hex, where `base` is
/// 12 random hex characters chosen once per import. The exporter sends `"M=" + magic` first in
/// the stream and the importer checks it before writing anything.
public enum ImportExportMagic {
    public static func generateBase() -> String { SecureRandom.hex(byteCount: 6) }

    public static func compute(base: String, instanceName: String, index: Int) -> String {
        let text = String(ExportHandshake.version) + base + instanceName + String(index)
        return Hex.encode(MessageAuthentication.digest(.sha1, Array(text.utf8)))
    }

    /// `IE_MAGIC_RE = ^[-_.a-zA-Z0-9]{5,100}$`: what the import/export daemons accept.
    public static func isValid(_ magic: String) -> Bool {
        (5...100).contains(magic.utf8.count) && magic.utf8.allSatisfy {
            Salt.isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
        }
    }
}
