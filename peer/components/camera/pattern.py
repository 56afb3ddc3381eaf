"""A moving test pattern rendered straight into I420 (planar YUV 4:2:0) numpy buffers.

Why YUV and not RGB: video encoders (VP8/H264) and JPEG both want 4:2:0 planes, and converting
rgb24 → yuv420p costs ~4 ms per 720p frame (docs/performance.md §3a), half of a VP8 encode. So
the pattern is drawn in limited-range BT.601 YUV (what ``yuv420p`` means to libav), and stills
convert only when they have to (PNG needs RGB, JPEG wants full range).

The picture: scrolling colour bars, a scrolling luma ramp, a bouncing box, a text block with the
camera label, frame number and UTC clock (drawn with a built-in 5x7 bitmap font), and a strip of
32 black/white cells at the bottom carrying the frame number in binary, so a receiver can read the
number back from a decoded frame (:func:`read_frame_code`) to count drops or measure latency.

Everything is a pure function of the time given to :meth:`TestPattern.render`, so a frame can be
reproduced exactly in tests.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

Plane = npt.NDArray[np.uint8]

#: Limited-range (video) levels: black, white and neutral chroma.
Y_BLACK, Y_WHITE, C_NEUTRAL = 16, 235, 128

#: 75 % colour bars in BT.601 limited range: (Y, U, V) for white, yellow, cyan, green,
#: magenta, red, blue, black.
_BARS: tuple[tuple[int, int, int], ...] = (
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
    (16, 128, 128),
)
#: Orange (RGB 255/128/0) for the moving box, with a black border.
_BOX_YUV = (146, 53, 193)

#: The 90 kHz clock of RTP video, used for ``VideoFrame.pts`` so any frame rate fits.
VIDEO_TIME_BASE = Fraction(1, 90000)

#: Cells of the binary frame-number strip (bits of the frame index, most significant first).
CODE_BITS = 32

# 5x7 glyphs, one string per row, "#" = lit. Lower case is drawn as upper case.
_FONT_ROWS: dict[str, tuple[str, ...]] = {
    "0": (".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."),
    "1": ("..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "2": (".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"),
    "3": ("#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."),
    "4": ("...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."),
    "5": ("#####", "#....", "####.", "....#", "....#", "#...#", ".###."),
    "6": ("..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."),
    "7": ("#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."),
    "8": (".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."),
    "9": (".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."),
    "A": (".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "B": ("####.", "#...#", "#...#", "####.", "#...#", "#...#", "####."),
    "C": (".###.", "#...#", "#....", "#....", "#....", "#...#", ".###."),
    "D": ("###..", "#..#.", "#...#", "#...#", "#...#", "#..#.", "###.."),
    "E": ("#####", "#....", "#....", "####.", "#....", "#....", "#####"),
    "F": ("#####", "#....", "#....", "####.", "#....", "#....", "#...."),
    "G": (".###.", "#...#", "#....", "#.###", "#...#", "#...#", ".####"),
    "H": ("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "I": (".###.", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."),
    "J": ("..###", "...#.", "...#.", "...#.", "...#.", "#..#.", ".##.."),
    "K": ("#...#", "#..#.", "#.#..", "##...", "#.#..", "#..#.", "#...#"),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "M": ("#...#", "##.##", "#.#.#", "#.#.#", "#...#", "#...#", "#...#"),
    "N": ("#...#", "#...#", "##..#", "#.#.#", "#..##", "#...#", "#...#"),
    "O": (".###.", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "P": ("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
    "Q": (".###.", "#...#", "#...#", "#...#", "#.#.#", "#..#.", ".##.#"),
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "S": (".####", "#....", "#....", ".###.", "....#", "....#", "####."),
    "T": ("#####", "..#..", "..#..", "..#..", "..#..", "..#..", "..#.."),
    "U": ("#...#", "#...#", "#...#", "#...#", "#...#", "#...#", ".###."),
    "V": ("#...#", "#...#", "#...#", "#...#", "#...#", ".#.#.", "..#.."),
    "W": ("#...#", "#...#", "#...#", "#.#.#", "#.#.#", "#.#.#", ".#.#."),
    "X": ("#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"),
    "Y": ("#...#", "#...#", "#...#", ".#.#.", "..#..", "..#..", "..#.."),
    "Z": ("#####", "....#", "...#.", "..#..", ".#...", "#....", "#####"),
    ":": (".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."),
    ".": (".....", ".....", ".....", ".....", ".....", ".##..", ".##.."),
    "-": (".....", ".....", ".....", "#####", ".....", ".....", "....."),
    "_": (".....", ".....", ".....", ".....", ".....", ".....", "#####"),
    "/": (".....", "....#", "...#.", "..#..", ".#...", "#....", "....."),
    " ": (".....",) * 7,
    "?": (".###.", "#...#", "....#", "...#.", "..#..", ".....", "..#.."),
}
GLYPH_W, GLYPH_H = 5, 7
_FONT: dict[str, npt.NDArray[np.bool_]] = {
    ch: np.array([[c == "#" for c in row] for row in rows], dtype=bool) for ch, rows in _FONT_ROWS.items()
}


def text_mask(text: str, scale: int = 1) -> npt.NDArray[np.bool_]:
    """The lit pixels of ``text``: one glyph plus one blank column per character, scaled up."""
    cell = np.zeros((GLYPH_H, (GLYPH_W + 1) * max(len(text), 1)), dtype=bool)
    for i, ch in enumerate(text.upper()):
        cell[:, i * (GLYPH_W + 1) : i * (GLYPH_W + 1) + GLYPH_W] = _FONT.get(ch, _FONT["?"])
    if scale > 1:
        cell = cell.repeat(scale, axis=0).repeat(scale, axis=1)
    return cell


def _triangle(phase: float) -> float:
    """0 → 1 → 0 over one unit of ``phase``: a bounce."""
    frac = phase - math.floor(phase)
    return 1.0 - abs(2.0 * frac - 1.0)


@dataclass(frozen=True, eq=False)
class PatternFrame:
    """One rendered frame. ``i420`` holds the Y plane, then U, then V, back to back (yuv420p)."""

    i420: Plane
    width: int
    height: int
    index: int
    #: Seconds since the pattern's start, quantised to the frame instant.
    time_s: float
    #: Wall-clock (epoch seconds) the frame shows and reports as its capture time.
    wall_time: float

    @property
    def y(self) -> Plane:
        return self.i420[: self.height]

    @property
    def u(self) -> Plane:
        start = self.width * self.height
        size = start // 4
        return self.i420.reshape(-1)[start : start + size].reshape(self.height // 2, self.width // 2)

    @property
    def v(self) -> Plane:
        start = self.width * self.height * 5 // 4
        size = self.width * self.height // 4
        return self.i420.reshape(-1)[start : start + size].reshape(self.height // 2, self.width // 2)

    def to_video_frame(self) -> av.VideoFrame:
        """A ``yuv420p`` :class:`av.VideoFrame` with pts on the 90 kHz video clock."""
        frame = av.VideoFrame.from_ndarray(self.i420, format="yuv420p")
        frame.pts = round(self.time_s * 90000)
        frame.time_base = VIDEO_TIME_BASE
        return frame


class TestPattern:
    """Renders the moving pattern for one frame size and rate; cheap to call once per frame."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, width: int, height: int, fps: float, *, label: str = "", noise: int = 0) -> None:
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(f"frame size must be even and at least 16x16, not {width}x{height}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, not {fps}")
        self.width = width
        self.height = height
        self.fps = float(fps)
        self.label = label
        #: Amplitude of per-pixel luma noise, like a real sensor's: it makes frames as hard to
        #: compress as a camera's (large stills, realistic encoder load). Seeded by the frame
        #: index, so a frame stays deterministic.
        self.noise = noise
        self.scale = max(1, height // 160)
        self.code_h = max(8, (height // 32) & ~1)
        self._bars_h = (height - self.code_h) * 2 // 3 & ~1
        # One row per plane for the bars (full width, to be rolled) and the ramp.
        bar_x = np.arange(width) * len(_BARS) // width
        self._bar_rows = [np.array([_BARS[i][p] for i in bar_x], dtype=np.uint8) for p in range(3)]
        self._ramp_row = (Y_BLACK + np.arange(width) * (Y_WHITE - Y_BLACK) // (width - 1)).astype(np.uint8)
        self._box = (height // 6) & ~1

    def index_at(self, t: float) -> int:
        return max(0, math.floor(t * self.fps + 1e-9))

    def render(self, t: float, *, wall_time: float | None = None) -> PatternFrame:
        """The frame on screen ``t`` seconds after the start (``wall_time`` defaults to now)."""
        index = self.index_at(t)
        t_frame = index / self.fps
        wall = time.time() if wall_time is None else wall_time
        w, h = self.width, self.height
        buf = np.empty((h * 3 // 2, w), dtype=np.uint8)
        frame = PatternFrame(buf, w, h, index, t_frame, wall)
        y, u, v = frame.y, frame.u, frame.v

        # Colour bars scroll left by a quarter of the width per second.
        shift = round(t_frame * w / 4) % w
        bh = self._bars_h
        y[:bh] = np.roll(self._bar_rows[0], -shift)
        u[: bh // 2] = np.roll(self._bar_rows[1], -shift)[::2]
        v[: bh // 2] = np.roll(self._bar_rows[2], -shift)[::2]
        # The luma ramp below scrolls right, twice as fast; chroma neutral.
        y[bh:] = np.roll(self._ramp_row, round(t_frame * w / 2) % w)
        u[bh // 2 :] = C_NEUTRAL
        v[bh // 2 :] = C_NEUTRAL

        self._draw_box(frame, t_frame)
        self._draw_text(frame, wall)
        if self.noise:
            self._add_noise(frame)
        self._draw_code(frame)
        return frame

    def _add_noise(self, frame: PatternFrame) -> None:
        rows = self.height - self.code_h  # the frame-code strip stays clean so it can be read back
        rng = np.random.default_rng(frame.index)
        grain = rng.integers(-self.noise, self.noise + 1, size=(rows, self.width), dtype=np.int16)
        noisy = frame.y[:rows].astype(np.int16) + grain
        frame.y[:rows] = np.clip(noisy, Y_BLACK, Y_WHITE).astype(np.uint8)

    def _fill(self, frame: PatternFrame, x0: int, y0: int, x1: int, y1: int, yuv: tuple[int, int, int]) -> None:
        """Fill a rectangle in all three planes (chroma rounded outwards to whole 2x2 blocks)."""
        frame.y[y0:y1, x0:x1] = yuv[0]
        cy0, cy1, cx0, cx1 = y0 // 2, (y1 + 1) // 2, x0 // 2, (x1 + 1) // 2
        frame.u[cy0:cy1, cx0:cx1] = yuv[1]
        frame.v[cy0:cy1, cx0:cx1] = yuv[2]

    def _draw_box(self, frame: PatternFrame, t: float) -> None:
        size, border = self._box, 2 * self.scale
        x = int(_triangle(t / 4.0) * (self.width - size)) & ~1
        y = int(_triangle(t / 3.0) * (self.height - self.code_h - size)) & ~1
        self._fill(frame, x, y, x + size, y + size, (Y_BLACK, C_NEUTRAL, C_NEUTRAL))
        self._fill(frame, x + border, y + border, x + size - border, y + size - border, _BOX_YUV)

    def _draw_text(self, frame: PatternFrame, wall: float) -> None:
        s = self.scale
        clock = time.strftime("%H:%M:%S", time.gmtime(wall)) + f".{int(wall * 1000) % 1000:03d} UTC"
        lines = [line for line in (self.label, f"FRAME {frame.index:06d}", clock) if line]
        max_chars = max(1, (self.width - 4 * s) // ((GLYPH_W + 1) * s))
        masks = [text_mask(line[:max_chars], s) for line in lines]
        pad, line_h = 2 * s, (GLYPH_H + 2) * s
        box_w = min(self.width, max(m.shape[1] for m in masks) + 2 * pad) & ~1
        box_h = min(self.height - self.code_h, len(masks) * line_h + 2 * pad - 2 * s) & ~1
        self._fill(frame, 0, 0, box_w, box_h, (Y_BLACK, C_NEUTRAL, C_NEUTRAL))
        for i, mask in enumerate(masks):
            top = pad + i * line_h
            mh = min(mask.shape[0], box_h - top)
            mw = min(mask.shape[1], box_w - pad)
            if mh <= 0 or mw <= 0:
                break
            region = frame.y[top : top + mh, pad : pad + mw]
            region[mask[:mh, :mw]] = Y_WHITE

    def _draw_code(self, frame: PatternFrame) -> None:
        """The frame index in binary across the bottom strip: white cell = 1, black = 0."""
        top = self.height - self.code_h
        bits = np.array([(frame.index >> (CODE_BITS - 1 - i)) & 1 for i in range(CODE_BITS)], dtype=np.uint8)
        cells = bits[np.arange(self.width) * CODE_BITS // self.width]
        frame.y[top:] = np.where(cells == 1, Y_WHITE, Y_BLACK).astype(np.uint8)
        frame.u[top // 2 :] = C_NEUTRAL
        frame.v[top // 2 :] = C_NEUTRAL


def read_frame_code(y_plane: npt.NDArray[np.uint8], code_h: int | None = None) -> int:
    """Read the frame index back from a (possibly lossy, rescaled) luma plane.

    Samples the middle of each cell of the bottom strip; ``code_h`` defaults to the height
    :class:`TestPattern` uses for this frame height.
    """
    height, width = y_plane.shape
    if code_h is None:
        code_h = max(8, (height // 32) & ~1)
    row = y_plane[height - code_h // 2]
    value = 0
    for i in range(CODE_BITS):
        x = (2 * i + 1) * width // (2 * CODE_BITS)
        value = (value << 1) | int(row[x] > 128)
    return value
