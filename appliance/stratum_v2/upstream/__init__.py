"""Upstream side of the Stratum V2 module: where the downstream server's work comes from.

`sv2_pool` (SV2 pool, extended channel), `sv1_pool` (SV1 pool, translated), `solo` (our own
node's templates) all implement the `base.Upstream` interface; `failover` orders them, checks
their health, and is itself the `TemplateSource` the downstream server mines on.
"""
