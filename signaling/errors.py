"""Errors of the signaling layer, each carrying the gRPC status it is reported with.

The same failure can surface on three paths (the caller's Call/CallUpdate, the answerer's Answer
stream, and the queue in between), so the status lives on the exception, not at each raise site:
whoever turns it into a ``GRPCError`` or a ``google.rpc.Status`` stage gets the same code and text.
Where the Go reference sends a plain error, the status is UNKNOWN, as it is for Go's clients.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from google.rpc import status_pb2
from grpclib import GRPCError, Status

from .const import HOST_NOT_ALLOWED_MSG, RPC_HOST_KEY


@dataclass(frozen=True, slots=True)
class ErrorStatus:
    """A ``google.rpc.Status`` without details: what one side of a call tells the other.

    A plain value (not the proto) so that a queue backed by another process can store it.
    """

    code: Status
    message: str

    def to_proto(self) -> status_pb2.Status:
        return status_pb2.Status(code=self.code.value, message=self.message)

    @classmethod
    def from_proto(cls, proto: status_pb2.Status) -> ErrorStatus:
        """An error stage always means failure, so code 0 (OK) or an unknown code reads as UNKNOWN."""
        try:
            code = Status(proto.code)
        except ValueError:
            code = Status.UNKNOWN
        if code is Status.OK:
            code = Status.UNKNOWN
        return cls(code, proto.message)

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorStatus:
        if isinstance(exc, SignalingError):
            return exc.error_status()
        if isinstance(exc, GRPCError):
            return cls(exc.status, exc.message or exc.status.name)
        if isinstance(exc, TimeoutError):
            return cls(Status.DEADLINE_EXCEEDED, str(exc) or "deadline exceeded")
        if isinstance(exc, asyncio.CancelledError):
            return cls(Status.CANCELLED, "cancelled")
        return cls(Status.UNKNOWN, str(exc) or type(exc).__name__)


class SignalingError(Exception):
    """Base of every expected error in :mod:`signaling`; ``status`` is what the remote side receives."""

    status: Status = Status.UNKNOWN

    def __init__(self, message: str, *, status: Status | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status

    def grpc_error(self) -> GRPCError:
        return GRPCError(self.status, self.message)

    def error_status(self) -> ErrorStatus:
        return ErrorStatus(self.status, self.message)


class HostMetadataError(SignalingError):
    """``rpc-host`` missing, empty, or the wrong count. Go returns a plain error, so UNKNOWN (§3)."""

    status = Status.UNKNOWN


class MissingHostError(HostMetadataError):
    def __init__(self) -> None:
        super().__init__(f"expected {RPC_HOST_KEY} to be set in metadata")


class HostNotAllowedError(SignalingError):
    """Go clients treat exactly this status and text as "no signaler here" and dial directly (§3)."""

    status = Status.INVALID_ARGUMENT

    def __init__(self, host: str) -> None:
        super().__init__(HOST_NOT_ALLOWED_MSG)
        self.host = host


class InvalidSdpError(SignalingError):
    """An SDP that is not base64 of JSON ``{type, sdp}`` (§4)."""

    status = Status.INVALID_ARGUMENT


class InvalidCandidateError(SignalingError):
    status = Status.INVALID_ARGUMENT


class ExchangeProtocolError(SignalingError):
    """A peer broke the stage order of an exchange (init twice, update before init, uuid mismatch)."""

    status = Status.INVALID_ARGUMENT


class InactiveOfferError(SignalingError):
    """The uuid names no live call: unknown, expired, or already failed (goutils ``inactiveOfferError``)."""

    status = Status.NOT_FOUND

    def __init__(self, uuid: str) -> None:
        super().__init__(f'no active offer for "{uuid}"')
        self.uuid = uuid


class HostOfflineError(SignalingError):
    """No answerer is connected for the host (goutils ``ErrHostOffline``)."""

    status = Status.NOT_FOUND

    def __init__(self, host: str) -> None:
        super().__init__("host appears to be offline; ensure machine is online and try again")
        self.host = host


class TooManyCallersError(SignalingError):
    """goutils ``errTooManyConns``."""

    status = Status.UNAVAILABLE

    def __init__(self, host: str) -> None:
        super().__init__("too many connection attempts; please wait a bit and try again")
        self.host = host


class TooManyAnswerersError(SignalingError):
    status = Status.UNAVAILABLE

    def __init__(self, host: str) -> None:
        super().__init__(f"too many answerers for host {host!r}; please wait a bit and try again")
        self.host = host


class TooManyCandidatesError(SignalingError):
    status = Status.RESOURCE_EXHAUSTED

    def __init__(self, uuid: str, limit: int) -> None:
        super().__init__(f'call "{uuid}" exceeded {limit} queued ICE candidates')
        self.uuid = uuid


class OfferTimeoutError(SignalingError):
    status = Status.DEADLINE_EXCEEDED


class RemoteError(SignalingError):
    """An error stage the other side of the call sent; keeps that side's status code."""


class QueueClosedError(SignalingError):
    status = Status.UNAVAILABLE

    def __init__(self) -> None:
        super().__init__("signaling call queue is closed")


class StoreUnavailableError(SignalingError):
    """The shared signaling store (Redis) did not answer in time or refused the connection.

    Raised fast (short socket timeouts), so a caller redials instead of waiting out its deadline.
    """

    status = Status.UNAVAILABLE

    def __init__(self, cause: BaseException | str) -> None:
        detail = cause if isinstance(cause, str) else (str(cause) or type(cause).__name__)
        super().__init__(f"signaling store unavailable: {detail}")
