// The coordinator is the third party of a move. Trust primitives live in their own module,
// MoveTrust, so that the cluster agent can use them without the coordinator's workflow; they are
// re-exported here because every user of the coordinator needs them.
@_exported import MoveTrust
