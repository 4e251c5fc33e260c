/// A failure of the agent, with the Ganeti error class and code a RAPI client sees.
public struct AgentError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Ganeti's exception class, e.g. `OpPrereqError`.
    public let errorClass: String
    public let message: String
    /// Ganeti's ecode: `wrong_input`, `already_exists`, `unknown_entity`, `insufficient_resources`,
    /// `environment_error`, `wrong_state`, `internal_error`…
    public let ecode: String

    public init(_ errorClass: String = "OpPrereqError", _ message: String, ecode: String) {
        self.errorClass = errorClass
        self.message = message
        self.ecode = ecode
    }

    public var description: String { message }

    public static func configuration(_ message: String) -> AgentError { AgentError("OpPrereqError", message, ecode: "environment_error") }
    public static func wrongInput(_ message: String) -> AgentError { AgentError("OpPrereqError", message, ecode: "wrong_input") }
    public static func unknown(_ message: String) -> AgentError { AgentError("OpPrereqError", message, ecode: "unknown_entity") }
    public static func exists(_ message: String) -> AgentError { AgentError("OpPrereqError", message, ecode: "already_exists") }
    public static func wrongState(_ message: String) -> AgentError { AgentError("OpPrereqError", message, ecode: "wrong_state") }
    public static func noSpace(_ message: String) -> AgentError { AgentError("OpPrereqError", message, ecode: "insufficient_resources") }
    public static func execution(_ message: String) -> AgentError { AgentError("OpExecError", message, ecode: "internal_error") }
}
