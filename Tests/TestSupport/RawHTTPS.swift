import Foundation

/// Raw HTTPS requests through curl, with the path sent exactly as written (`--path-as-is`, no
/// escaping, no normalisation) and the server verified against its certificate. Many requests
/// go through one curl process (`--next`), each with its own method, credentials and body.
public struct RawHTTPS: Sendable {
    public struct Request: Sendable, CustomStringConvertible {
        public var method: String
        public var path: String
        public var user: String?
        public var password: String?
        public var body: [UInt8]?
        public var headers: [String]

        public init(_ method: String, _ path: String, user: String? = nil, password: String? = nil, body: [UInt8]? = nil, headers: [String] = []) {
            (self.method, self.path, self.user, self.password, self.body, self.headers) = (method, path, user, password, body, headers)
        }

        public var description: String { "\(method) \(path) as \(user ?? "nobody")" }
    }

    public struct Response: Sendable {
        public let status: Int
        public let body: String
        public let seconds: Double
    }

    public let port: Int
    public let caFile: String

    public init(port: Int, caFile: String) {
        self.port = port
        self.caFile = caFile
    }

    /// Sends the requests in order over fresh connections; a status of 0 means no HTTP answer.
    public func send(_ requests: [Request], timeout: Double = 30) throws -> [Response] {
        guard !requests.isEmpty else { return [] }
        let scratch = TemporaryDirectory("curl")
        var arguments: [String] = []
        for (index, request) in requests.enumerated() {
            if index > 0 { arguments.append("--next") }
            arguments += ["-s", "--path-as-is", "--cacert", caFile, "--resolve", "localhost:\(port):127.0.0.1",
                          "--max-time", String(Int(timeout)), "-H", "Expect:"] + (request.method == "HEAD" ? ["--head"] : ["-X", request.method]) + [
                          "-o", scratch.file("body\(index)"), "-w", "%{http_code} %{time_total}\\n"]
            if let user = request.user { arguments += ["-u", "\(user):\(request.password ?? "")"] }
            for header in request.headers { arguments += ["-H", header] }
            if let body = request.body {
                let file = scratch.file("request\(index)")
                _ = FileManager.default.createFile(atPath: file, contents: Data(body))
                arguments += ["--data-binary", "@" + file, "-H", "Content-Type: application/json"]
            }
            arguments.append("https://localhost:\(port)\(request.path)")
        }
        let result = try runProcess("/usr/bin/curl", arguments)
        let lines = result.stdout.split(separator: "\n")
        return requests.indices.map { index in
            let fields = index < lines.count ? lines[index].split(separator: " ") : []
            let body = (try? String(contentsOfFile: scratch.file("body\(index)"), encoding: .utf8)) ?? ""
            return Response(status: fields.first.flatMap { Int($0) } ?? 0, body: body,
                            seconds: fields.count > 1 ? Double(fields[1]) ?? 0 : 0)
        }
    }
}
