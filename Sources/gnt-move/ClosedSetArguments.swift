import ArgumentParser
import BlockStream
import ClusterAgent

// The closed sets of the command line: ArgumentParser refuses any other value at once (exit 64),
// naming the accepted ones, and lists them in the help. The types live in libraries that do not
// depend on ArgumentParser, hence the conformances here.

extension CompressionMethod: ExpressibleByArgument {}
extension ImportExportOptions.Mode: ExpressibleByArgument {}
extension ImportExportOptions.StreamProtocol: ExpressibleByArgument {}
extension ChunkDigestAlgorithm: ExpressibleByArgument {}
extension AgentConfig.HypervisorDriverKind: ExpressibleByArgument {}
extension AgentConfig.Hypervisor: ExpressibleByArgument {}
extension AgentConfig.LibvirtDomainType: ExpressibleByArgument {}

/// `--ipv4` or `--ipv6`, exclusive; the flags are named by ``AddressFamily``'s raw values.
extension AddressFamily: EnumerableFlag {
    public static func name(for value: AddressFamily) -> NameSpecification { .customLong(value.rawValue) }

    public static func help(for value: AddressFamily) -> ArgumentHelp? {
        switch value {
        case .ipv4: "Use IPv4."
        case .ipv6: "Use IPv6."
        }
    }
}

extension NameSpecification {
    /// An option of `gnt-move import-export`, by its one declared name.
    static func daemon(_ option: ImportExportOptions.Option) -> NameSpecification { .customLong(option.rawValue) }
}
