import Foundation
import OpenSSLSupport

/// Ganeti's RAPI users file: `user password [option,option]` per line, `#` comments. A password
/// is plain, `{cleartext}pw`, or `{HA1}md5("user:Ganeti Remote API:pw")` (scheme names are not
/// case-sensitive). Options: `read`, `write`.
public struct UsersFile: Sendable {
    public static let realm = "Ganeti Remote API"

    public struct User: Sendable, Equatable {
        public let name: String
        public let password: String
        public let options: Set<String>
        public var canWrite: Bool { options.contains("write") }
    }

    public let users: [String: User]

    public init(text: String) {
        var users: [String: User] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(maxSplits: 2, whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard parts.count >= 2 else { continue }
            let options = parts.count == 3
                ? Set(parts[2].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() })
                : []
            users[parts[0]] = User(name: parts[0], password: parts[1], options: options)
        }
        self.users = users
    }

    public static func load(path: String) throws -> UsersFile {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw AgentError.configuration("cannot read RAPI users file \(path)")
        }
        return UsersFile(text: text)
    }

    /// `VerifyBasicAuthPassword`: the user, when the password matches.
    public func authenticate(user name: String, password: String) -> User? {
        guard let user = users[name] else { return nil }
        var expected = user.password
        if !expected.hasPrefix("{") { expected = "{CLEARTEXT}" + expected }
        guard let close = expected.firstIndex(of: "}"), expected.distance(from: expected.startIndex, to: close) > 1 else { return nil }
        let scheme = expected[...close].uppercased()
        let secret = String(expected[expected.index(after: close)...])
        switch scheme {
        case "{CLEARTEXT}":
            return MessageAuthentication.constantTimeEqual(Array(secret.utf8), Array(password.utf8)) ? user : nil
        case "{HA1}":
            let digest = Hex.encode(MessageAuthentication.digest(.md5, Array("\(name):\(Self.realm):\(password)".utf8)))
            return MessageAuthentication.constantTimeEqual(Array(secret.lowercased().utf8), Array(digest.utf8)) ? user : nil
        default:
            return nil
        }
    }

    /// A users-file line with an `{HA1}` password.
    public static func line(user: String, password: String, options: [String]) -> String {
        let ha1 = Hex.encode(MessageAuthentication.digest(.md5, Array("\(user):\(realm):\(password)".utf8)))
        return "\(user) {HA1}\(ha1) \(options.joined(separator: ","))"
    }
}
