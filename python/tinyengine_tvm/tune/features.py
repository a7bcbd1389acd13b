"""Per-layer features of a compiled model's steps, for the tuner's cost model.

AutoTVM's XGBTuner predicts a schedule's cost from numeric features so that it
measures only the most promising candidates; ``tvmc tune`` does the same one
level up, per step of a :class:`~tinyengine_tvm.kernel_graph.KernelGraph`: what
kernel the step calls and on what shapes.

Two things come out of a step:

* :func:`layer_features`, a ``{name: float}`` dict. Names rather than a fixed
  vector, so that a kernel added to the registry later, or a feature added
  here, does not shift the columns of a model trained before: the cost model
  keeps its own list of names and reads a missing one as 0.
* :func:`layer_signature`, a short hash of what determines the step's cost
  (kernel, operand shapes and dtypes, the shape-like parameters). Two steps with
  the same signature do the same work, in any model, so measurements recorded
  for one model's layer carry over to another model that shares it.

Only *shape-like* parameters count. A step's attrs also carry requantization
numbers (multipliers, shifts, zero-point offsets, clamps, scales) that differ
from model to model without changing the work done; in the features they would
let the regressor memorize models instead of learning costs, and in the
signature they would keep equal layers apart. :data:`SHAPE_ATTRS` is an allow
list for that reason: a new attr is ignored until someone decides it is shape-like.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, List, Tuple

import numpy as np

from ..kernels import KERNELS, is_inplace, macs as kernel_macs, spec

#: Bumped whenever a feature's meaning changes: cached rows and trained models
#: record it, and a model trained on other features refuses to predict.
FEATURES_VERSION = 1

#: Step attrs that describe the work's shape (sizes, strides, padding, windows).
#: Everything else in ``Step.attrs`` is quantization arithmetic or a clamp.
SHAPE_ATTRS = frozenset({
    # convolution / pooling / matmul geometry
    "batch", "batches", "input_h", "input_w", "input_c", "output_h", "output_w", "output_c",
    "kernel_h", "kernel_w", "filter_h", "filter_w", "window_h", "window_w", "stride_h", "stride_w",
    "dilation_h", "dilation_w", "pad_top", "pad_left", "depth_multiplier", "input_depth", "output_depth",
    "num_filters", "units", "input_size", "memory_size", "time", "rank", "channels", "depth",
    # element-wise, reduction and data movement
    "size", "count", "inner", "outer", "axis_size", "rows", "cols", "row_bytes", "src_stride", "dst_stride",
    "slice_size", "n_inputs", "block_h", "block_w", "reduced",
    # array-valued (dims, permutations, slicing)
    "dims", "input_dims", "output_dims", "perm", "begin", "strides", "before", "after", "axis_sizes",
    "lhs_batch_strides", "rhs_batch_strides", "lhs_row_stride", "lhs_depth_stride", "rhs_col_stride",
    "rhs_depth_stride", "input1_strides", "input2_strides", "x_strides", "y_strides", "condition_strides",
    "batch_dims",
})

#: The scalar shape attrs that become features of their own (the array-valued
#: ones enter as their product and length; the rest only through the signature).
_SCALAR_FEATURES = ("batch", "input_h", "input_w", "input_c", "output_h", "output_w", "output_c",
                    "kernel_h", "kernel_w", "stride_h", "stride_w", "dilation_h", "dilation_w", "pad_top",
                    "pad_left", "depth_multiplier", "window_h", "window_w", "rows", "cols", "row_bytes",
                    "src_stride", "dst_stride", "size", "count", "inner", "outer", "axis_size", "units",
                    "input_size", "channels", "depth", "n_inputs", "num_filters", "memory_size", "time")
_ARRAY_FEATURES = ("dims", "input_dims", "output_dims", "perm", "begin", "strides", "before", "after")

#: Operator families (the registry's TFLite-style op types) and kernels, sorted:
#: their one-hot names are stable however the registry orders its dict.
FAMILIES: Tuple[str, ...] = tuple(sorted({s.op_type for s in KERNELS.values()}))
#: Kernels registered after the shipped cost models were trained: their codes come after
#: the sorted others, so the codes of the earlier kernels (in the shipped models' rows) do
#: not move.
LATER_KERNELS: Tuple[str, ...] = ("te_arm_conv2d_narrow_s8", "te_arm_conv2d_narrow_w16_s8")
KERNEL_NAMES: Tuple[str, ...] = tuple(sorted(set(KERNELS) - set(LATER_KERNELS))) + LATER_KERNELS


def _nhwc(shape: List[int]) -> List[int]:
    """A shape as 4 dims N, H, W, C: lower ranks padded with 1 on the left (a
    [1, T, D] sequence becomes 1x1xTxD), higher ranks folded into N."""
    dims = [int(d) for d in shape] or [1]
    if len(dims) > 4:
        dims = [int(np.prod(dims[:-3]))] + dims[-3:]
    return [1] * (4 - len(dims)) + dims


def _shape_attrs(attrs: Dict[str, Any]) -> Dict[str, Any]:
    """The shape-like attrs, as plain ints / lists of ints (JSON-stable)."""
    out = {}
    for k in sorted(attrs):
        if k not in SHAPE_ATTRS:
            continue
        v = attrs[k]
        if isinstance(v, (list, tuple, np.ndarray)):
            out[k] = [int(x) for x in np.asarray(v).reshape(-1)]
        else:
            out[k] = int(v)
    return out


def _operands(graph, index: int):
    """(activation inputs, constant inputs, output) tensors of step ``index``."""
    step = graph.steps[index]
    ins = [graph.tensors[t] for t in step.inputs]
    acts = [t for t in ins if t.kind != "constant"]
    consts = [t for t in ins if t.kind == "constant"]
    return acts, consts, graph.tensors[step.output]


def layer_features(graph, index: int) -> Dict[str, float]:
    """Numeric features of step ``index`` of ``graph`` (a KernelGraph), by name.

    Kernel and operator family (one-hot over the registry), DSP or portable,
    in place, patch step; the first two activation inputs' and the output's
    N, H, W, C, element counts and dtype widths; the weights' bytes; the
    shape-like attrs (kernel size, strides, dilation, padding, channels, depth
    multiplier, rows and strides of copies); MACs as the metadata counts them
    (:func:`tinyengine_tvm.kernels.macs`); bytes read and written; and a few
    ratios a tree cannot form on its own (MACs per output element, kernel area).
    """
    step = graph.steps[index]
    ks = spec(step.kernel)
    acts, consts, out = _operands(graph, index)
    f: Dict[str, float] = {}
    f[f"kernel={step.kernel}"] = 1.0
    f[f"family={ks.op_type}"] = 1.0
    # Stable numeric codes as well as the one-hots: a tree splits on ranges of
    # them, which groups e.g. every depthwise kernel variant in a few splits.
    f["kernel_code"] = float(KERNEL_NAMES.index(step.kernel))
    f["family_code"] = float(FAMILIES.index(ks.op_type))
    f["dsp"] = float(step.kernel.startswith("te_arm_"))
    f["inplace"] = float(is_inplace(step.kernel))
    f["calls"] = float(ks.calls)
    f["patch"] = float("patch_of" in step.notes)
    f["n_act_inputs"] = float(len(acts))
    f["n_const_inputs"] = float(len(consts))

    read = 0
    for k, t in enumerate(acts[:2]):
        for axis, d in zip("nhwc", _nhwc(t.shape)):
            f[f"in{k}_{axis}"] = float(d)
        f[f"in{k}_elems"] = float(np.prod(t.shape, dtype=np.int64))
        f[f"in{k}_bits"] = float(np.dtype(t.dtype).itemsize * 8)
    for t in acts:
        read += t.nbytes
    weight_bytes = sum(t.nbytes for t in consts)
    f["weight_bytes"] = float(weight_bytes)
    for axis, d in zip("nhwc", _nhwc(out.shape)):
        f[f"out_{axis}"] = float(d)
    out_elems = float(np.prod(out.shape, dtype=np.int64))
    f["out_elems"] = out_elems
    f["out_bits"] = float(np.dtype(out.dtype).itemsize * 8)

    attrs = _shape_attrs(step.attrs)
    for name in _SCALAR_FEATURES:
        if name in attrs:
            f[f"attr_{name}"] = float(attrs[name])
    for name in _ARRAY_FEATURES:
        if name in attrs:
            f[f"attr_{name}_prod"] = float(np.prod(attrs[name], dtype=np.int64))
            f[f"attr_{name}_len"] = float(len(attrs[name]))

    m = float(kernel_macs(step.kernel, step.attrs))
    f["macs"] = m
    f["log2_macs"] = float(np.log2(m + 1.0))
    f["macs_per_out"] = m / out_elems if out_elems else 0.0
    f["kernel_area"] = float(attrs.get("kernel_h", attrs.get("window_h", 1)) *
                             attrs.get("kernel_w", attrs.get("window_w", 1)))
    # Copies (crop/paste) move rows * row_bytes, not the whole buffer.
    moved = attrs["rows"] * attrs["row_bytes"] if "rows" in attrs and "row_bytes" in attrs else None
    f["bytes_read"] = float(moved if moved is not None else read + weight_bytes)
    f["bytes_written"] = float(moved if moved is not None else (out.nbytes if ks.calls else 0))
    f["log2_bytes"] = float(np.log2(f["bytes_read"] + f["bytes_written"] + 1.0))
    return f


def layer_signature(graph, index: int) -> str:
    """A short stable hash (16 hex digits) of what determines step ``index``'s cost:
    its kernel, every operand's shape, dtype and kind (activation or constant),
    and the shape-like attrs. Equal for the same layer in two models; weights'
    values, tensor names and requantization numbers do not enter."""
    step = graph.steps[index]
    acts, consts, out = _operands(graph, index)
    key = {
        "kernel": step.kernel,
        "in": [[list(map(int, t.shape)), t.dtype, t.kind == "constant"] for t in
               (graph.tensors[i] for i in step.inputs)],
        "out": [list(map(int, out.shape)), out.dtype],
        "attrs": _shape_attrs(step.attrs),
    }
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def graph_layers(graph) -> List[Tuple[str, Dict[str, float]]]:
    """``(signature, features)`` of every step of ``graph``, in step order."""
    return [(layer_signature(graph, i), layer_features(graph, i)) for i in range(len(graph.steps))]
