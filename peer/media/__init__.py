"""Live video media: one capture loop per camera, one VP8 encoder per camera and size, fanned out
to per-viewer aiortc tracks."""

from .capture import CameraCapture, CapturedFrame, CaptureError, RateWindow, Subscription, SubscriptionClosed
from .encoder import EncodedCameraTrack, SharedEncoder, encode_once_enabled
from .track import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, CameraTrack

__all__ = [
    "VIDEO_CLOCK_RATE",
    "VIDEO_TIME_BASE",
    "CameraCapture",
    "CameraTrack",
    "CaptureError",
    "CapturedFrame",
    "EncodedCameraTrack",
    "RateWindow",
    "SharedEncoder",
    "Subscription",
    "SubscriptionClosed",
    "encode_once_enabled",
]
