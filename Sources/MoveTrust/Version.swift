/// gnt-move's version, as `gnt-move --version` and an agent's `/2/info` report it.
public enum GntMoveVersion {
    public static let current = "0.1.0"
}
