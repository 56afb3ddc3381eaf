"""Live video media: one capture loop per camera, fanned out to per-viewer aiortc tracks."""

from .capture import CameraCapture, CapturedFrame, CaptureError, RateWindow, Subscription, SubscriptionClosed
from .track import VIDEO_CLOCK_RATE, VIDEO_TIME_BASE, CameraTrack

__all__ = [
    "VIDEO_CLOCK_RATE",
    "VIDEO_TIME_BASE",
    "CameraCapture",
    "CameraTrack",
    "CaptureError",
    "CapturedFrame",
    "RateWindow",
    "Subscription",
    "SubscriptionClosed",
]
