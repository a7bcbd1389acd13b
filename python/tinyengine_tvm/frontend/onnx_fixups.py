"""Keep in the IR what TVM 0.27's ONNX importer would lose.

``tvm.relax.frontend.onnx`` lowers a constant-mode Pad to a ``call_tir`` of
TOPI's pad, so its widths and value exist only inside a TIR function.  While
:func:`pad_as_relax_op` is active, constant Pads become ``relax.op.nn.pad``
instead (same meaning: widths per axis, the fill value as a float), which
``CanonicalizeONNXQDQ`` reads directly.  Other modes keep the importer's path.
"""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def pad_as_relax_op():
    """While active, the ONNX importer emits constant Pads as ``relax.op.nn.pad``."""
    from tvm import relax
    from tvm.relax.frontend.onnx import onnx_frontend as onnx_fe

    pad = onnx_fe.Pad
    original_v2, original_lower = pad.__dict__["_impl_v2"], pad.__dict__["_lower_pad"]

    def as_relax(x, before, after, value):
        widths = [int(w) for b, a in zip(before, after) for w in (b, a)]
        return relax.op.nn.pad(x, widths, "constant", float(value))

    def impl_v2(cls, bb, inputs, attr, params):
        if attr.get("mode", b"constant") not in (b"constant", "constant"):
            return original_v2.__func__(cls, bb, inputs, attr, params)
        pads = [int(p) for p in attr.get("pads")]
        half = len(pads) // 2
        return as_relax(inputs[0], pads[:half], pads[half:], attr.get("value", 0.0) or 0.0)

    def lower_pad(cls, bb, inputs, attr, params, allowed_modes):
        if attr.get("mode", b"constant") not in (b"constant", "constant"):
            return original_lower.__func__(cls, bb, inputs, attr, params, allowed_modes)
        before, after, value = cls._parse_pads_and_axes(inputs, params)
        return as_relax(inputs[0], before, after, value)

    pad._impl_v2, pad._lower_pad = classmethod(impl_v2), classmethod(lower_pad)
    try:
        yield
    finally:
        pad._impl_v2, pad._lower_pad = original_v2, original_lower
