"""Test helpers shared across the suite (chains, oracles, mutations)."""
