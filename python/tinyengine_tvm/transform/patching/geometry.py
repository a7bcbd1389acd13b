"""Windows of NHWC tensors and how a patchable kernel maps an output window to its input windows."""
from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Optional, Tuple

import numpy as np

# int16 activations (TFLite 16x8) run the same templated kernels with the same
# parameter structs, so their windowed forms take the same local geometry.
WINDOWED = ("te_conv2d_s8", "te_depthwise_conv2d_s8", "te_avg_pool_s8", "te_max_pool_s8",
            "te_conv2d_s16", "te_depthwise_conv2d_s16", "te_avg_pool_s16", "te_max_pool_s16")
POINTWISE = ("te_requantize_s8", "te_quantize_f32_s8", "te_logistic_s8", "te_hard_swish_s8",  # "size" elements
             "te_requantize_s16", "te_requantize_s8_s16", "te_requantize_s16_s8", "te_quantize_f32_s16",
             "te_logistic_s16")
BINARY = ("te_add_s8", "te_mul_s8", "te_sub_s8", "te_squared_difference_s8", "te_maximum_s8", "te_minimum_s8",
          "te_add_s16", "te_mul_s16", "te_sub_s16", "te_squared_difference_s16", "te_maximum_s16", "te_minimum_s16")
CONCAT = ("te_concat_s8", "te_concat_s16")
PAD = ("te_pad_s8", "te_pad_s16")
RESIZE = ("te_resize_nearest_s8", "te_resize_nearest_s16")
_CONVOLUTIONS = ("te_conv2d_s8", "te_depthwise_conv2d_s8", "te_conv2d_s16", "te_depthwise_conv2d_s16")
PATCHABLE = WINDOWED + POINTWISE + BINARY + CONCAT + PAD + RESIZE


@dataclasses.dataclass(frozen=True)
class Window:
    """Rows [y0, y1) and columns [x0, x1) of an NHWC tensor."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def h(self) -> int:
        """Rows of the window."""
        return self.y1 - self.y0

    @property
    def w(self) -> int:
        """Columns of the window."""
        return self.x1 - self.x0

    def union(self, other: Optional["Window"]) -> "Window":
        """The smallest window holding both (``other`` may be None)."""
        if other is None:
            return self
        return Window(min(self.y0, other.y0), max(self.y1, other.y1), min(self.x0, other.x0), max(self.x1, other.x1))

    def contains(self, other: "Window") -> bool:
        """Whether ``other`` lies inside this window."""
        return self.y0 <= other.y0 and other.y1 <= self.y1 and self.x0 <= other.x0 and other.x1 <= self.x1


def window_geometry(step_attrs: Dict, kernel: str) -> Tuple[int, int, int, int, int, int, int, int]:
    """(kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left)."""
    a = step_attrs
    if kernel in _CONVOLUTIONS:
        return (a["kernel_h"], a["kernel_w"], a["stride_h"], a["stride_w"], a["dilation_h"], a["dilation_w"],
                a["pad_top"], a["pad_left"])
    return (a["filter_h"], a["filter_w"], a["stride_h"], a["stride_w"], 1, 1, a["pad_top"], a["pad_left"])


def input_window(kernel: str, attrs: Dict, out: Window, in_h: int, in_w: int) -> Window:
    """The input window a step reads to produce ``out`` (clipped to the input)."""
    if kernel in PAD:
        return _pad_input_window(attrs, out, in_h, in_w)
    if kernel in RESIZE:
        rows = [nearest_source_index(y, in_h, attrs["output_h"], attrs) for y in (out.y0, out.y1 - 1)]
        cols = [nearest_source_index(x, in_w, attrs["output_w"], attrs) for x in (out.x0, out.x1 - 1)]
        return Window(rows[0], rows[1] + 1, cols[0], cols[1] + 1)
    if kernel not in WINDOWED:
        return out
    kh, kw, sh, sw, dh, dw, pt, pl = window_geometry(attrs, kernel)
    y0 = out.y0 * sh - pt
    y1 = (out.y1 - 1) * sh - pt + (kh - 1) * dh + 1
    x0 = out.x0 * sw - pl
    x1 = (out.x1 - 1) * sw - pl + (kw - 1) * dw + 1
    return Window(max(0, y0), min(in_h, y1), max(0, x0), min(in_w, x1))


def grid(h: int, w: int, nh: int, nw: int) -> List[Window]:
    """An nh x nw grid of windows over an h x w map, row-major (sizes differ by at most 1)."""
    ys = [round(i * h / nh) for i in range(nh + 1)]
    xs = [round(i * w / nw) for i in range(nw + 1)]
    return [Window(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(nh) for j in range(nw)]


def _pad_input_window(attrs: Dict, out: Window, in_h: int, in_w: int) -> Window:
    """The input rows/columns a PAD's output window shows; a window that shows only
    padding reads the nearest input row/column (kernels take no empty tensors; the
    local before/after padding then covers the whole window)."""
    bh, bw = attrs["before"][1], attrs["before"][2]

    def span(lo: int, hi: int, size: int) -> Tuple[int, int]:
        a = min(max(0, lo), size - 1)
        return a, max(min(size, hi), a + 1)

    y0, y1 = span(out.y0 - bh, out.y1 - bh, in_h)
    x0, x1 = span(out.x0 - bw, out.x1 - bw, in_w)
    return Window(y0, y1, x0, x1)


def nearest_source_index(dst: int, in_size: int, out_size: int, attrs: Dict) -> int:
    """The input row/column RESIZE_NEAREST_NEIGHBOR reads for output row/column
    ``dst``: te_resize_nearest_s8's rule, in float32 as the kernel computes it."""
    align, half = bool(attrs["align_corners"]), bool(attrs["half_pixel_centers"])
    f32 = np.float32
    scale = f32(in_size - 1) / f32(out_size - 1) if align and out_size > 1 else f32(in_size) / f32(out_size)
    pos = float((f32(dst) + f32(0.5 if half else 0.0)) * scale)
    # roundf: halves away from zero (pos >= 0 here); exact in double.
    src = math.floor(pos + 0.5) if align else math.floor(pos)
    src = min(src, in_size - 1)
    return max(src, 0) if half else src
