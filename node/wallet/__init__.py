"""Keys and signing for the node's own coins (payouts, regtest workloads)."""
