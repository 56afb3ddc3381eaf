"""Protocol numbers of gRPC over a WebRTC data channel, named once (wire-protocol.md §7, §9).

Every number here is a wire fact shared with Viam's clients and goutils, or a limit chosen for this
server; the modules of :mod:`peer.tunnel` import them from here instead of repeating literals.
"""

from __future__ import annotations

# Wire facts shared with signaling (the bottom layer names them once): the largest data-channel
# message (browsers reject larger sends), the reassembled-message cap and the send-pause threshold.
from signaling.const import MAX_DATA_CHANNEL_MESSAGE as MAX_DATA_CHANNEL_MESSAGE
from signaling.const import MAX_MESSAGE_SIZE as MAX_MESSAGE_SIZE
from signaling.const import SEND_PAUSE_THRESHOLD as SEND_PAUSE_THRESHOLD

#: Data bytes per ``Response`` frame. A frame with the largest possible stream id (2**64 - 1, a
#: 10-byte varint), ``eom`` set and 3-byte length varints has 27 bytes of wrapping, so
#: ``65_508 + 27 = 65_535`` holds for every stream id (checked by the tests).
RESPONSE_CHUNK_SIZE = MAX_DATA_CHANNEL_MESSAGE - 27

#: Data bytes per ``Request`` frame: ``has_message`` and ``eos`` cost 4 bytes more than a response.
REQUEST_CHUNK_SIZE = MAX_DATA_CHANNEL_MESSAGE - 31

#: How long one pause may last before the send fails: aiortc's SCTP can stall silently
#: (performance.md §5.6), and a stream must not wait on a dead channel forever.
SEND_STALL_TIMEOUT_S = 10.0

#: Concurrent streams one data channel may run. Go's server has no cap; 256 is the cap the Rust
#: client enforces on itself (and the TS client declares), so no real client ever meets ours.
DEFAULT_MAX_STREAMS = 256

#: How long :meth:`TunnelServer.close` waits for cancelled handlers before giving up on them.
CLOSE_GRACE_S = 5.0

#: Status messages that clients may show; the first mirrors goutils word for word.
UNIMPLEMENTED_MESSAGE = "Unimplemented"
RST_MESSAGE = "request cancelled"
