"""Board: API, gRPC service and the ``fake`` model."""

from ...gen.viam.component.board.v1 import board_pb2
from ...resource.registration import register_api, register_model
from .api import Board
from .fake import FakeBoard
from .service import BoardRPCService

register_api(Board, BoardRPCService, board_pb2.DESCRIPTOR.services_by_name["BoardService"])
register_model(Board, "fake", FakeBoard.new, FakeBoard.validate)

__all__ = ["Board", "BoardRPCService", "FakeBoard"]
