"""Bitcoin P2P wire protocol, sans-IO.

``framing`` splits a byte stream into checked (command, payload) frames;
``messages`` holds one small class per message with ``parse``/``serialize``;
``peer`` is the per-connection state machine (handshake order, feature
negotiation) that the node's networking layer drives with bytes.
"""
