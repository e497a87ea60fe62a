"""Bitcoin Core-compatible JSON-RPC over HTTP.

``auth`` (cookie file, rpcauth credentials), ``errors`` (Core's codes),
``server`` (HTTP transport, JSON-RPC 1.0/2.0, batches), ``jsonfmt`` (blocks and
transactions as Core prints them) and one module of methods per area.
"""
