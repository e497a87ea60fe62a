"""Bitcoin wire formats, sans-IO.

Modules: ``compact`` (CompactSize), ``hashes``, ``tx`` (Tx/TxIn/TxOut, raw 36-byte
outpoints), ``block`` (BlockHeader/Block), ``merkle`` (roots with the mutation
check), ``pow`` (bits/target/work), ``script`` (opcodes, templates, sigops),
``address`` (base58check, bech32/bech32m), ``sighash`` (legacy, BIP143, BIP341),
``networks`` (per-network constants shared by address and P2P code), ``script_asm``
(Bitcoin Core's script shorthand used by its test vectors), ``taproot`` (leaf/branch
hashes, tweaks, control blocks), ``_ripemd160`` (fallback when OpenSSL lacks it).
"""
