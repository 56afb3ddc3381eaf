"""A pure-Python WebRTC dialer: what the Rust dialer in ``viam-sdk`` does, on aiortc and grpclib.

:func:`dial` signals through ``SignalingService`` on the robot's address (native gRPC, h2c or TLS),
connects an aiortc peer connection with the two pre-negotiated channels, and returns a
:class:`DialedChannel`: a grpclib-compatible channel whose calls travel over the ``data``
channel, so generated stubs work on it unchanged::

    async with await dial("127.0.0.1:8080") as channel:
        robot = RobotServiceStub(channel.as_channel())
        names = await robot.ResourceNames(ResourceNamesRequest())

The sequence is the Go/Rust caller's (wire-protocol.md §5, §12): ``OptionalWebRTCConfig``
(UNIMPLEMENTED means no extra ICE servers), ``Call{sdp}`` with ``rpc-host``, the answer from the
init stage, the answerer's trickled candidates as they come, our own candidates through
``CallUpdate`` (only when ``trickle`` is on: aiortc puts them all in the offer otherwise), then
``CallUpdate{done}``, and the ``data`` channel opening. Every step is bounded by ``timeout``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ssl import SSLContext
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aiortc import MediaStreamTrack, RTCSessionDescription
from aiortc.sdp import SessionDescription as AiortcSdp
from grpclib import GRPCError, Status
from grpclib.client import Channel
from grpclib.const import Cardinality
from grpclib.metadata import Deadline

from peer.tunnel import TunnelChannel, TunnelClientStream
from signaling.config import IceServer, WebRTCConfig
from signaling.const import RPC_HOST_KEY
from signaling.errors import SignalingError
from signaling.gen.proto.rpc.webrtc.v1 import signaling_pb2 as pb
from signaling.gen.proto.rpc.webrtc.v1.signaling_grpc import SignalingServiceStub
from signaling.sdp import (
    IceCandidate,
    SessionDescription,
    candidate_from_proto,
    candidate_to_proto,
    decode_sdp,
    encode_sdp,
)

from .connection import WebRTCConnection
from .constants import DIAL_TIMEOUT_S, SIGNALING_CALL_TIMEOUT_S
from .rtc import check_remote_description, describe, split_candidates

if TYPE_CHECKING:
    from grpclib.client import Stream

    CallStream = Stream[pb.CallRequest, pb.CallResponse]

logger = logging.getLogger(__name__)

SendT = TypeVar("SendT")
RecvT = TypeVar("RecvT")

#: Rewrites (or, returning ``None``, drops) each local candidate before it is trickled.
CandidateFilter = Callable[[IceCandidate], IceCandidate | None]

_dial_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class DialTimings:
    """How long each step of one dial took, in seconds (``None``: the step was not observed).

    ``answer_s``, ``ice_connected_s``, ``connected_s`` and ``data_open_s`` count from the moment
    ``Call`` was sent; ``config_s`` is the ``OptionalWebRTCConfig`` round trip, ``offer_s`` the
    offer (ICE gathering included), ``total_s`` the whole dial.
    """

    config_s: float
    offer_s: float
    answer_s: float | None
    ice_connected_s: float | None
    connected_s: float | None
    data_open_s: float | None
    total_s: float

    def as_dict(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in self.__slots__}


class DialedChannel(WebRTCConnection):
    """A connected WebRTC peer on the client side, usable wherever grpclib wants a ``Channel``.

    :meth:`request` is grpclib's ``Channel.request``, over the ``data`` channel's tunnel.
    :meth:`close` closes the tunnel, the peer connection and the signaling channel (idempotent,
    bounded); the channel also closes itself when the robot goes away.
    """

    def __init__(self, ice_servers: Sequence[IceServer], *, tag: str, signaling: Channel) -> None:
        super().__init__(ice_servers, tag=tag, polite=True)
        self.tunnel = TunnelChannel(self.data, tag=tag)
        self.signaling = signaling
        self.uuid: str | None = None
        self.timings: DialTimings | None = None
        #: Media the robot sends now, by msid stream id (the camera's SDP name), from its last offer.
        #: Read frames from them: aiortc queues every received frame until ``recv()`` takes it.
        self.remote_tracks: dict[str, MediaStreamTrack] = {}
        self._tracks_changed = asyncio.Event()
        self.negotiator.listeners.append(self._update_remote_tracks)

    def _update_remote_tracks(self) -> None:
        remote = self.pc.remoteDescription
        sending = remote_sending_streams(remote.sdp) if remote is not None else {}
        tracks: dict[str, MediaStreamTrack] = {}
        for transceiver in self.pc.getTransceivers():
            stream_id = sending.get(transceiver.mid or "")
            track = transceiver.receiver.track
            if stream_id is not None and track is not None:
                tracks[stream_id] = track
        self.remote_tracks = tracks
        changed, self._tracks_changed = self._tracks_changed, asyncio.Event()
        changed.set()

    async def wait_remote_track(self, stream_id: str, *, timeout: float = DIAL_TIMEOUT_S, present: bool = True) -> None:
        """Wait (bounded: ``TimeoutError``) until the robot sends ``stream_id`` (or, ``present=False``, stops)."""
        async with asyncio.timeout(timeout):
            while (stream_id in self.remote_tracks) != present:
                await self._tracks_changed.wait()

    def request(
        self,
        name: str,
        cardinality: Cardinality,
        request_type: type[SendT],
        reply_type: type[RecvT],
        *,
        timeout: float | None = None,
        deadline: Deadline | None = None,
        metadata: Any = None,
    ) -> TunnelClientStream[SendT, RecvT]:
        """Same signature as :meth:`grpclib.client.Channel.request`; what generated stubs call."""
        return self.tunnel.request(name, cardinality, request_type, reply_type, timeout=timeout, deadline=deadline,
                                   metadata=metadata)

    def as_channel(self) -> Channel:
        """This object, typed as the ``grpclib.client.Channel`` that generated stubs declare."""
        return cast(Channel, self)

    async def __aenter__(self) -> DialedChannel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _close_tunnel(self) -> None:
        self.tunnel.close()

    def _after_close(self) -> None:
        self.signaling.close()


def remote_sending_streams(sdp: str) -> dict[str, str]:
    """``mid`` → msid stream id of every m-line whose sender (the remote side) sends media."""
    streams: dict[str, str] = {}
    try:
        parsed = AiortcSdp.parse(sdp)
    except Exception:
        return streams
    for media in parsed.media:
        mid = media.rtp.muxId
        if media.kind in ("audio", "video") and media.msid and mid and media.direction in ("sendonly", "sendrecv"):
            streams[mid] = media.msid.split()[0]
    return streams


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` into its parts; ``ValueError`` without a port."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected host:port, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


async def dial(
    address: str,
    *,
    host: str | None = None,
    timeout: float = DIAL_TIMEOUT_S,
    ice_servers: Sequence[IceServer] = (),
    metadata: Mapping[str, str] | None = None,
    trickle: bool = False,
    candidate_filter: CandidateFilter | None = None,
    ssl: SSLContext | None = None,
) -> DialedChannel:
    """Connect to the robot at ``address`` over WebRTC, signaling through ``address`` itself.

    :param host: the ``rpc-host`` to ask for (default: ``address``, as the Rust dialer sends it).
    :param timeout: bound on the whole dial (the Python SDK's per-attempt 20 s by default).
    :param ice_servers: STUN/TURN servers, before any the signaling server adds. None by default.
    :param metadata: extra metadata on every signaling call (e.g. ``authorization``).
    :param trickle: send our candidates through ``CallUpdate`` instead of in the offer, as the
        TS and Rust clients do.
    :param candidate_filter: in trickle mode, rewrites or drops each candidate before it is sent.
    :param ssl: signal over TLS with this client context (it should offer ALPN ``h2``, e.g.
        :func:`signaling.external.signaling_client_context`); the certificate is checked for the
        host of ``address``. ``None``: cleartext h2c.
    :raises GRPCError: the signaling status (e.g. INVALID_ARGUMENT, NOT_FOUND), UNAVAILABLE when
        the robot or the peer connection cannot be reached, DEADLINE_EXCEEDED after ``timeout``.
    """
    signal_host, signal_port = split_address(address)
    tag = f"dial{next(_dial_ids)}"
    signaling = Channel(signal_host, signal_port, ssl=ssl)
    call_metadata = [(RPC_HOST_KEY, host or address), *(metadata or {}).items()]
    stub = SignalingServiceStub(signaling)
    loop = asyncio.get_running_loop()
    started = loop.time()
    connection: DialedChannel | None = None
    try:
        async with asyncio.timeout(timeout):
            config = await _optional_config(stub, call_metadata)
            configured = loop.time()
            connection = DialedChannel([*ice_servers, *config.ice_servers], tag=tag, signaling=signaling)
            offer = await _offer(connection)
            offered = loop.time()
            local: list[IceCandidate] = []
            if trickle:
                offer, local = split_candidates(offer)
            await _signal(connection, stub, call_metadata, offer, local, candidate_filter)
    except TimeoutError:
        await _abandon(connection, signaling, "dial timed out")
        raise GRPCError(Status.DEADLINE_EXCEEDED, f"dialing {address} took over {timeout:g} s") from None
    except BaseException as exc:
        await _abandon(connection, signaling, f"dial failed: {exc!r}")
        if isinstance(exc, GRPCError):
            raise
        if isinstance(exc, SignalingError):
            raise exc.grpc_error() from exc
        if isinstance(exc, OSError):
            raise GRPCError(Status.UNAVAILABLE, f"cannot reach {address}: {exc}") from exc
        raise
    times = connection.times
    reference = times.call_sent
    connection.timings = DialTimings(
        config_s=configured - started,
        offer_s=offered - configured,
        answer_s=times.since(reference, times.answer),
        ice_connected_s=times.since(reference, times.ice_connected),
        connected_s=times.since(reference, times.connected),
        data_open_s=times.since(reference, times.data_open),
        total_s=loop.time() - started,
    )
    logger.info("webrtc[%s] dialed %s (call %s) in %.0f ms", tag, address, connection.uuid,
                1000 * connection.timings.total_s)
    return connection


async def _abandon(connection: DialedChannel | None, signaling: Channel, reason: str) -> None:
    if connection is not None:
        await connection.close(reason)
    else:
        signaling.close()


async def _optional_config(stub: SignalingServiceStub, metadata: list[tuple[str, str]]) -> WebRTCConfig:
    try:
        reply = await stub.OptionalWebRTCConfig(
            pb.OptionalWebRTCConfigRequest(), metadata=metadata, timeout=SIGNALING_CALL_TIMEOUT_S
        )
    except GRPCError as exc:
        if exc.status is not Status.UNIMPLEMENTED:
            raise
        return WebRTCConfig()
    return WebRTCConfig.from_proto(reply.config)


async def _offer(connection: DialedChannel) -> str:
    pc = connection.pc
    await pc.setLocalDescription(await pc.createOffer())
    return pc.localDescription.sdp


async def _signal(
    connection: DialedChannel,
    stub: SignalingServiceStub,
    metadata: list[tuple[str, str]],
    offer: str,
    local: Sequence[IceCandidate],
    candidate_filter: CandidateFilter | None,
) -> None:
    loop = asyncio.get_running_loop()
    request = pb.CallRequest(sdp=encode_sdp(SessionDescription("offer", offer)))
    async with stub.Call.open(metadata=metadata) as call:
        connection.times.call_sent = loop.time()
        await call.send_message(request, end=True)
        first = await call.recv_message()
        if first is None:
            await call.recv_trailing_metadata()  # raises the signaling error, if any
            raise GRPCError(Status.UNKNOWN, "the Call stream ended without an answer")
        if first.WhichOneof("stage") != "init":
            raise GRPCError(Status.INTERNAL, f"expected the answer first, got {first.WhichOneof('stage')}")
        connection.uuid = uuid = first.uuid
        answer = decode_sdp(first.init.sdp, expect_type="answer")
        connection.times.answer = loop.time()
        try:
            check_remote_description(answer.sdp, "answer")
            await connection.pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        except Exception as exc:
            raise GRPCError(Status.INTERNAL, f"unusable answer: {describe(exc)}") from None
        updates = loop.create_task(_read_updates(call, connection), name=f"webrtc[{connection.tag}] answerer updates")
        try:
            for candidate in local:
                sent = candidate_filter(candidate) if candidate_filter is not None else candidate
                if sent is not None:
                    await stub.CallUpdate(
                        pb.CallUpdateRequest(uuid=uuid, candidate=candidate_to_proto(sent)),
                        metadata=metadata, timeout=SIGNALING_CALL_TIMEOUT_S,
                    )
            await stub.CallUpdate(pb.CallUpdateRequest(uuid=uuid, done=True), metadata=metadata,
                                  timeout=SIGNALING_CALL_TIMEOUT_S)
            await _wait_open(connection, updates)
        finally:
            if not updates.done():
                updates.cancel()
                await asyncio.wait({updates})
                try:
                    await call.cancel()  # the Call is still open: reset it rather than wait for its end
                except Exception as exc:
                    logger.debug("webrtc[%s] resetting the Call stream raised %r", connection.tag, exc)
            elif not updates.cancelled() and updates.exception() is not None:
                logger.debug("webrtc[%s] the Call ended with %r", connection.tag, updates.exception())


async def _read_updates(call: CallStream, connection: DialedChannel) -> None:
    """The answerer's trickled candidates until its Call ends; raises the Call's error status."""
    async for response in call:
        if response.WhichOneof("stage") == "update":
            try:
                await connection.add_remote_candidate(candidate_from_proto(response.update.candidate))
            except SignalingError as exc:
                logger.warning("webrtc[%s] ignoring an answerer candidate: %s", connection.tag, exc.message)
    await call.recv_trailing_metadata()


async def _wait_open(connection: DialedChannel, updates: asyncio.Task[None]) -> None:
    """Wait for ``data`` to open; a failed Call (the answerer gave up) fails the dial with its status."""
    opened = asyncio.ensure_future(connection.wait_open())
    try:
        await asyncio.wait({opened, updates}, return_when=asyncio.FIRST_COMPLETED)
        if not opened.done():
            error = updates.exception()
            if error is not None:
                raise error
            await opened  # the Call ended OK: keep waiting for the channel
        opened.result()
    finally:
        if not opened.done():
            opened.cancel()
            await asyncio.wait({opened})
