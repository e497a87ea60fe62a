"""The template-provider fixtures of the unit tests (a regtest chainstate with a mempool)."""

from tests.unit.template_provider.conftest import tp_chain_data, tp_env

__all__ = ["tp_chain_data", "tp_env"]
