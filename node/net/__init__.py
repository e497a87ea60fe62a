"""The node's P2P networking: peer connections, header-first sync, block relay, address book."""
