"""Errors of the robot layer, each carrying the gRPC status it is reported with.

Every transport turns a :class:`PeerError` into the same status and message, so a client sees
``NOT_FOUND: camera "cam9" not found`` whether it came over HTTP/2, gRPC-web or a data channel.
"""

from __future__ import annotations

from grpclib import GRPCError, Status


class PeerError(Exception):
    """Base of every expected error in :mod:`peer`; ``status`` is what clients receive."""

    status: Status = Status.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def grpc_error(self) -> GRPCError:
        return GRPCError(self.status, self.message)


class ResourceNotFoundError(PeerError):
    status = Status.NOT_FOUND

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f'{kind} "{name}" not found')
        self.kind = kind
        self.name = name


class DuplicateResourceError(PeerError):
    status = Status.ALREADY_EXISTS

    def __init__(self, name: str) -> None:
        super().__init__(f'a resource named "{name}" is already registered')
        self.name = name


class ValidationError(PeerError):
    """A configuration or argument that cannot be used; ``path`` says where it sits."""

    status = Status.INVALID_ARGUMENT

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


class NotSupportedError(PeerError):
    """The resource exists but does not offer this capability."""

    status = Status.UNIMPLEMENTED


class OperationCancelledError(PeerError):
    status = Status.CANCELLED


class SessionExpiredError(PeerError):
    """Viam clients look for exactly this message to start a new session."""

    status = Status.INVALID_ARGUMENT

    def __init__(self) -> None:
        super().__init__("SESSION_EXPIRED")
