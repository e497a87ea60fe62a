"""The Stratum V2 module's downstream side: SV2 (Noise) listener for LAN miners.

Layers: `jobs` (work templates -> per-channel jobs), `shares` (validation in SRI's order),
`vardiff` (per-channel targets), `source` (where templates come from: the node, later a pool),
`keys` (authority key and certificate on disk), `server` (asyncio glue, batching, statistics).
"""
