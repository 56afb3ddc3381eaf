"""Still-image encoding of I420 frames with PyAV: JPEG (``mjpeg``) and PNG.

A codec context is created per image: encoders are not thread-safe, a flushed context cannot be
reused, and creating one costs well under a millisecond next to the 2-8 ms of a 640x480 encode.
That keeps these functions safe to run in worker threads (``asyncio.to_thread``).
"""

from __future__ import annotations

from typing import Literal

import av
import numpy as np
import numpy.typing as npt

MIME_JPEG = "image/jpeg"
MIME_PNG = "image/png"
MIME_PCD = "pointcloud/pcd"
IMAGE_MIME_TYPES = (MIME_JPEG, MIME_PNG)

#: libav's quantiser scale for JPEG (2 = best, 31 = worst); 3 is visually lossless on the pattern.
JPEG_QSCALE = 3

# Limited-range (16-235 / 16-240) to full-range (0-255) lookup tables: JPEG is full range.
_Y_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)
_C_TO_FULL = np.clip(np.round((np.arange(256) - 128) * 255 / 224 + 128), 0, 255).astype(np.uint8)

_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def frame_size(i420: npt.NDArray[np.uint8]) -> tuple[int, int]:
    """(width, height) of a yuv420p buffer shaped (height * 3 / 2, width)."""
    return i420.shape[1], i420.shape[0] * 2 // 3


def _encode(frame: av.VideoFrame, codec: Literal["mjpeg", "png"], pix_fmt: str, qscale: int | None = None) -> bytes:
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = frame.width, frame.height, pix_fmt
    if qscale is not None:
        ctx.qmin = ctx.qmax = qscale
    packets = ctx.encode(frame) + ctx.encode(None)
    return b"".join(bytes(p) for p in packets)


def encode_jpeg(i420: npt.NDArray[np.uint8]) -> bytes:
    """Baseline JPEG (4:2:0, full range), with the frame header right after SOI.

    The Python SDK reads width/height by walking JPEG segments with a parser that only copes
    with segments shorter than 256 bytes; libavcodec writes the 418-byte Huffman table before the
    frame header, so the header is moved first (any order before SOS is valid JPEG).
    """
    height = frame_size(i420)[1]
    full = np.empty_like(i420)
    full[:height] = _Y_TO_FULL[i420[:height]]
    full[height:] = _C_TO_FULL[i420[height:]]
    frame = av.VideoFrame.from_ndarray(full, format="yuvj420p")
    return sof_first(_encode(frame, "mjpeg", "yuvj420p", JPEG_QSCALE))


def encode_png(i420: npt.NDArray[np.uint8]) -> bytes:
    """RGB PNG (swscale converts BT.601 limited-range YUV to RGB)."""
    frame = av.VideoFrame.from_ndarray(i420, format="yuv420p").reformat(format="rgb24")
    return _encode(frame, "png", "rgb24")


def encode_image(i420: npt.NDArray[np.uint8], mime_type: str) -> bytes:
    if mime_type == MIME_JPEG:
        return encode_jpeg(i420)
    if mime_type == MIME_PNG:
        return encode_png(i420)
    raise ValueError(f"cannot encode {mime_type!r}; supported: {', '.join(IMAGE_MIME_TYPES)}")


def sof_first(jpeg: bytes) -> bytes:
    """The same JPEG with its SOFn segment moved directly after SOI (unchanged if already there)."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG: missing SOI")
    pos, segments, sof = 2, [], None
    while pos + 4 <= len(jpeg):
        if jpeg[pos] != 0xFF:
            raise ValueError(f"malformed JPEG: expected a marker at byte {pos}")
        marker = jpeg[pos + 1]
        if marker == 0xDA:  # start of scan: entropy-coded data follows, keep the rest as is
            break
        end = pos + 2 + int.from_bytes(jpeg[pos + 2 : pos + 4], "big")
        segment = jpeg[pos:end]
        if marker in _SOF_MARKERS and sof is None:
            sof = segment
        else:
            segments.append(segment)
        pos = end
    if sof is None:
        raise ValueError("malformed JPEG: no frame header before the scan")
    return b"".join([jpeg[:2], sof, *segments, jpeg[pos:]])
