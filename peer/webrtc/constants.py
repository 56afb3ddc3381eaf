"""Numbers of the WebRTC peer, named once (wire-protocol.md §8, §9, §12; reliability.md §2, §4).

Channel labels and ids are wire facts shared with every Viam client, so they come from
:mod:`signaling.const`; the rest are this server's own bounds on setup and teardown.
"""

from __future__ import annotations

from typing import Final

from signaling.const import (
    DATA_CHANNEL_ID,
    DATA_CHANNEL_LABEL,
    NEGOTIATION_CHANNEL_ID,
    NEGOTIATION_CHANNEL_LABEL,
    OFFER_DEADLINE,
)

__all__ = [
    "CLOSE_TIMEOUT_S",
    "DATA_CHANNEL_ID",
    "DATA_CHANNEL_LABEL",
    "DIAL_TIMEOUT_S",
    "MAX_CANDIDATE_LENGTH",
    "MAX_PENDING_MDNS",
    "MAX_SDP_LENGTH",
    "NEGOTIATION_CHANNEL_ID",
    "NEGOTIATION_CHANNEL_LABEL",
    "OFFER_DEADLINE",
    "SIGNALING_CALL_TIMEOUT_S",
    "UDP_RECEIVE_BUFFER",
]

#: Ours (reliability.md §4 "Limits"): an offer SDP larger than this is refused before aiortc parses it.
MAX_SDP_LENGTH: Final = 64 * 1024
#: Ours (reliability.md §2 row 2): a candidate line longer than this is garbage.
MAX_CANDIDATE_LENGTH: Final = 1024
#: Ours: ``.local`` candidates resolving at once for one peer connection (aioice spends up to 1 s on
#: each); more than this are dropped, the pair then forms peer-reflexively.
MAX_PENDING_MDNS: Final = 16

#: How long closing one peer connection may take (tunnel, then aiortc's transports) before it is
#: abandoned with a warning; aiortc's own close can raise or stall on half-built connections.
CLOSE_TIMEOUT_S: Final = 5.0

#: The Python SDK's per-attempt dial timeout and Rust's per-step WebRTC timeout (§9).
DIAL_TIMEOUT_S: Final = 20.0
#: The Go caller's bound on one signaling RPC; also the server's bound on Call/CallUpdate (§9).
SIGNALING_CALL_TIMEOUT_S: Final = OFFER_DEADLINE

#: performance.md §2c/§5: aioice's per-socket ``SO_RCVBUF`` raised from 256 KiB to 4 MiB removed every
#: UDP drop in bulk transfers (the kernel caps it at ``net.core.rmem_max``).
UDP_RECEIVE_BUFFER: Final = 4 * 1024 * 1024
