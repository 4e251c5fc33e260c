import BlockStream
import MoveTrust

extension CompressionMethod {
    /// A request's `compress`: absent or null is `none`; anything but one of the accepted names
    /// is a bad request, refused before anything is created.
    init(requestField value: JSONValue?) throws(CoordinatorError) {
        guard let value, value != .null else {
            self = .none
            return
        }
        guard let name = value.stringValue, let method = CompressionMethod(rawValue: name) else {
            throw CoordinatorError.badRequest("'compress' is \(value.serialized); expected one of \(CompressionMethod.acceptedNames)")
        }
        self = method
    }
}
