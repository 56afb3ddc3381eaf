"""Protocol constants, each named once (wire-protocol.md §3, §6, §7, §8, §9; reliability.md §1.1).

Every value here is one the Viam clients or the Go reference (goutils) already assume, so changing
one changes what we promise on the wire; the comment says where the number comes from. Values
that are only *our* hardening (no Viam counterpart) say so.
"""

from __future__ import annotations

from typing import Final

# --- gRPC service ------------------------------------------------------------------------------

SIGNALING_SERVICE: Final = "proto.rpc.webrtc.v1.SignalingService"

# --- signaling metadata keys (§3) -----------------------------------------------------------------

#: Routes a call to a host. Call/CallUpdate need exactly one value; Answer and
#: OptionalWebRTCConfig accept 1..MAX_HOSTS_IN_METADATA.
RPC_HOST_KEY: Final = "rpc-host"
#: An answerer that sends ``heartbeats-allowed: true`` on Answer gets heartbeat stages.
HEARTBEATS_ALLOWED_KEY: Final = "heartbeats-allowed"
#: Ignored by a no-auth server: the Rust dialer sends ``Basic <fake creds>`` without credentials.
AUTHORIZATION_KEY: Final = "authorization"
#: goutils ``maxHostsInMetadata``.
MAX_HOSTS_IN_METADATA: Final = 5
#: goutils ``hostNotAllowedMsg``; Go clients match this text to fall back to direct gRPC.
HOST_NOT_ALLOWED_MSG: Final = "host not preconfigured"

# --- timeouts (§9) -----------------------------------------------------------------------------

#: goutils ``_defaultOfferDeadline``: lifetime of an offer, and the bound on Call, CallUpdate and
#: OptionalWebRTCConfig on the server.
OFFER_DEADLINE: Final = 10.0
#: goutils ``_defaultOfferDeadlineCloseToExpiredFactor``: an answerer does not claim an offer that
#: has less than this fraction of its lifetime left (2 s of 10 s).
OFFER_CLOSE_TO_EXPIRED_FACTOR: Final = 0.2
#: goutils ``defaultHeartbeatInterval``: heartbeat stages on an Answer stream.
HEARTBEAT_INTERVAL: Final = 15.0
#: goutils ``offlineHostRetryDelay``: how long a caller to a host with no answerer waits before
#: NOT_FOUND "host appears to be offline" (slows retry storms; an answerer that shows up in the
#: meantime still gets the call).
OFFLINE_HOST_RETRY_DELAY: Final = 5.0
#: goutils ``answererReconnectWait``.
ANSWERER_RECONNECT_WAIT: Final = 1.0
#: goutils ``answererConnectTimeout`` (60 s behind a SOCKS proxy).
ANSWERER_CONNECT_TIMEOUT: Final = 10.0
#: goutils ``getDeadline``: the answerer clamps ``init.deadline`` to at least now + 5 s.
ANSWERER_MIN_DEADLINE: Final = 5.0
#: goutils ``asyncSendOfferError`` budget: cleanup after a failed call never waits longer.
CLEANUP_TIMEOUT: Final = 5.0
#: gRPC keepalive: client ping interval, and the server's minimum accepted interval (goutils const.go).
KEEPALIVE_CLIENT_INTERVAL: Final = 10.0
KEEPALIVE_SERVER_MIN_TIME: Final = 5.0

# --- call queue caps (§6.3; reliability.md §1.1 "Limits") ------------------------------------------

#: goutils ``maxHostCallers`` (50): callers waiting on one host; over it UNAVAILABLE.
MAX_HOST_CALLERS: Final = 50
#: goutils ``defaultMaxAnswerers``: Answer streams one answerer keeps open.
DEFAULT_MAX_ANSWERERS: Final = 2
#: goutils ``maxHostAnswerersSize * 2``: answerer streams per host (2 answerers, 2x for reconnects).
MAX_HOST_ANSWERERS: Final = 2 * DEFAULT_MAX_ANSWERERS
#: Ours (no Viam counterpart): candidates one side may queue for one call before
#: RESOURCE_EXHAUSTED. A real exchange has a few dozen.
MAX_CANDIDATES_PER_CALL: Final = 256

# --- data channels (§7, §8) -------------------------------------------------------------------

DATA_CHANNEL_LABEL: Final = "data"
DATA_CHANNEL_ID: Final = 0
NEGOTIATION_CHANNEL_LABEL: Final = "negotiation"
NEGOTIATION_CHANNEL_ID: Final = 1
#: goutils ``maxDataChannelSize``: one data-channel message, envelope included.
MAX_DATA_CHANNEL_MESSAGE: Final = 65535
#: goutils ``MaxMessageSize`` (1 << 25): a reassembled gRPC message, on both transports.
MAX_MESSAGE_SIZE: Final = 1 << 25
#: goutils ``bufferThreshold`` (also its ``bufferedAmountLowThreshold``): message sends pause while
#: ``bufferedAmount`` is above 1 MiB and resume once it has dropped to it.
SEND_PAUSE_THRESHOLD: Final = 1 << 20
