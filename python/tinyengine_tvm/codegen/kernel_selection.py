"""Kernel selection: Cortex-M optimized kernels chosen at code-generation time.

``select_kernels(graph, core)`` rewrites the steps of a planned-to-be
:class:`KernelGraph` whose shapes an optimized kernel of ``src/kernels/arm/``
handles, for a core with the DSP extension (Cortex-M4, M7, M55): the step
calls the optimized kernel (convolutions, 1-D and 2-D depthwise, fully
connected, ADD, TRANSPOSE_CONV, BATCH_MATMUL, LSTM, SVDF, int8 and 16x8) and
its constants are re-laid-out, in Python, for it (constants belong to the
generated code, so packing them costs nothing at run time).  Everything else keeps its portable kernel, which stays the
reference and the fallback; each step whose optimized kernel was refused
records why in the step's ``notes["kernel_note"]``.

The packing itself (layouts, and the per-channel conditions under which the
optimized requantization is bit-exact) is the kernels' ABI and lives in
:mod:`tinyengine_tvm.kernels.arm_packing`; this module edits the graph.

The generated project builds everywhere: the optimized sources fall back to
plain C (same algorithm, same results) when ``__ARM_FEATURE_DSP`` is not
defined, so a model compiled for a Cortex-M still runs on the host.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..kernel_graph import KernelGraph, Step, Tensor
from ..kernels.arm_packing import (PackingRefused, check_depthwise, check_fc, is_line_depthwise, pack_add, pack_conv,
                                   pack_conv_s16, pack_depthwise, pack_depthwise_line, pack_depthwise_line_s16, pack_fc,
                                   pack_fc_s16, pack_lstm_s8, pack_lstm_s16, pack_svdf_s8, pack_transpose_conv,
                                   pack_transpose_conv_s16)

#: Cores whose optimized kernels exist (all three have the DSP extension).
DSP_CORES = ("cortex-m4", "cortex-m7", "cortex-m55")

#: This step keeps its portable kernel (the message says why).
_Refuse = PackingRefused


# --------------------------------------------------------------------------- graph editing
class _Editor:
    """Adds constants to a graph and rewrites steps; compacts at the end."""

    def __init__(self, graph: KernelGraph):
        self.graph = graph
        self._made: Dict[Tuple, int] = {}

    def const(self, step: Step, role: str, data: np.ndarray) -> int:
        """A new constant tensor; identical packings (the same layer's weights in
        every patch of patch-based inference) share one."""
        data = np.ascontiguousarray(data)
        key = (str(data.dtype), data.shape, data.tobytes())
        if key in self._made:
            return self._made[key]
        t = Tensor(len(self.graph.tensors), f"{step.name}_{role}", list(data.shape), str(data.dtype),
                   "constant", data)
        self.graph.tensors.append(t)
        self._made[key] = t.index
        return t.index

    def data(self, index: int) -> Optional[np.ndarray]:
        t = self.graph.tensors[index]
        return t.data if t.kind == "constant" else None

    def rewrite(self, step: Step, kernel: str, keep: List[int], constants: List[np.ndarray],
                roles: List[str], attrs: Dict) -> None:
        """Make ``step`` call ``kernel`` on its inputs at positions ``keep``
        followed by new ``constants``; ``attrs`` are added to its attributes."""
        old_offsets = step.notes.get("in_offsets")
        new_inputs = [step.inputs[k] for k in keep] + [self.const(step, r, c) for r, c in zip(roles, constants)]
        new_attrs = dict(step.attrs)
        new_attrs.update(attrs)
        notes = dict(step.notes, portable_kernel=step.kernel)
        if old_offsets is not None:
            notes["in_offsets"] = [old_offsets[k] for k in keep] + [0] * len(constants)
        step.kernel, step.inputs, step.attrs, step.notes = kernel, new_inputs, new_attrs, notes


def _compact(graph: KernelGraph) -> KernelGraph:
    """A copy of ``graph`` without the constants no step reads any more."""
    used = set()
    for s in graph.steps:
        used.update(s.inputs)
        used.add(s.output)
    keep = [t for t in graph.tensors if t.kind != "constant" or t.index in used]
    new_index = {t.index: k for k, t in enumerate(keep)}
    tensors = [dataclasses.replace(t, index=new_index[t.index],
                                   view_of=None if t.view_of is None else new_index[t.view_of]) for t in keep]
    steps = [dataclasses.replace(s, inputs=[new_index[i] for i in s.inputs], output=new_index[s.output])
             for s in graph.steps]
    return KernelGraph(tensors, steps, [new_index[i] for i in graph.inputs], [new_index[i] for i in graph.outputs],
                       [(name, None if v is None else new_index[v], None if a is None else new_index[a])
                        for name, v, a in graph.variables])


# --------------------------------------------------------------------------- convolution, depthwise, fully connected
def _conv_constants(ed: _Editor, step: Step):
    x, w_i, b_i, m_i, s_i = step.inputs
    w, mult, shift = ed.data(w_i), ed.data(m_i), ed.data(s_i)
    if w is None or mult is None or shift is None:
        raise _Refuse("weights or requantization tables are not constants")
    bias = ed.data(b_i)
    if bias is None:
        raise _Refuse("bias is not a constant")
    return w, bias.astype(np.int64).reshape(-1), mult, shift


def _select_conv(ed: _Editor, step: Step, variant: str = "dsp") -> None:
    wide = {"w8": False, "w16": True, "narrow": False, "narrow_w16": True}.get(variant)
    kernel, packed, attrs = pack_conv(step.attrs, *_conv_constants(ed, step), wide=wide,
                                      narrow=variant in NARROW_VARIANTS)
    ed.rewrite(step, kernel, [0], [packed], ["packed"], attrs)


def _select_depthwise(ed: _Editor, step: Step, variant: str = "dsp") -> None:
    inplace = step.kernel == "te_depthwise_conv2d_inplace_s8"
    if is_line_depthwise(step.attrs):
        # 1-D (streaming audio) shapes, dilated or not: the 2-D kernel's planes would be mostly padding
        kernel, packed, attrs = pack_depthwise_line(step.attrs, *_conv_constants(ed, step), inplace=inplace)
        ed.rewrite(step, kernel, [0], [packed], ["packed"], attrs)
        return
    check_depthwise(step.attrs)
    kernel, packed, attrs = pack_depthwise(step.attrs, *_conv_constants(ed, step), inplace=inplace,
                                           specialized=variant != "generic")
    ed.rewrite(step, kernel, [0], [packed], ["packed"], attrs)


def _select_fc(ed: _Editor, step: Step, variant: str = "dsp") -> None:
    check_fc(step.attrs)
    kernel, packed, attrs = pack_fc(step.attrs, *_conv_constants(ed, step))
    ed.rewrite(step, kernel, [0], [packed], ["packed"], attrs)


def _packed_by(pack: Callable) -> Callable[..., None]:
    """The handler of a step of (input, weights, bias, multiplier, shift) whose
    optimized kernel takes the input and one array ``pack`` makes of the rest."""

    def select(ed: _Editor, step: Step, variant: str = "dsp") -> None:
        kernel, packed, attrs = pack(step.attrs, *_conv_constants(ed, step))
        ed.rewrite(step, kernel, [0], [packed], ["packed"], attrs)

    return select


def _select_lstm(ed: _Editor, step: Step, variant: str = "dsp") -> None:
    wx, wh, bias = (ed.data(i) for i in step.inputs[1:4])
    if wx is None or wh is None or bias is None:
        raise _Refuse("LSTM weights or bias are not constants")
    pack = pack_lstm_s16 if step.kernel == "te_lstm_s16" else pack_lstm_s8
    kernel, packed, attrs = pack(step.attrs, wx, wh, bias)
    ed.rewrite(step, kernel, [0, 4], [packed], ["packed"], attrs)  # keeps the input and the sigmoid table


def _select_svdf(ed: _Editor, step: Step, variant: str = "dsp") -> None:
    w_feature, w_time = ed.data(step.inputs[1]), ed.data(step.inputs[2])
    if w_feature is None or w_time is None:
        raise _Refuse("SVDF weights are not constants")
    kernel, packed, attrs = pack_svdf_s8(step.attrs, w_feature, w_time)
    ed.rewrite(step, kernel, [0, 3], [packed], ["packed"], attrs)  # keeps the frame and the bias


def _select_batch_matmul(ed: _Editor, step: Step, variant: str = "dsp") -> None:
    # both operands are activations: the kernel widens them itself, nothing to pack
    ed.rewrite(step, "te_arm_batch_matmul_s8", [0, 1], [], [], {})


# --------------------------------------------------------------------------- add
def add_table(offset: int, left_shift: int, multiplier: int, shift: int) -> np.ndarray:
    """int32 [256]: MultiplyByQuantizedMultiplier((x + offset) << left_shift, m, shift)
    for x = int8(i), TFLM's arithmetic (te_arm_add_s8's input tables)."""
    from ..quantization.fixed_point import multiply_by_quantized_multiplier

    xs = np.arange(256, dtype=np.int64)
    xs = np.where(xs >= 128, xs - 256, xs)
    return np.array([multiply_by_quantized_multiplier((int(x) + offset) * (1 << left_shift), multiplier, shift)
                     for x in xs], dtype=np.int32)


def _select_add(ed: _Editor, step: Step, variant: str = "dsp") -> None:
    a = step.attrs
    ls = int(a["left_shift"])
    tables = [add_table(int(a[f"input{k}_offset"]), ls, int(a[f"input{k}_multiplier"]), int(a[f"input{k}_shift"]))
              for k in (1, 2)]
    kernel, fields = pack_add(a, tables[0], tables[1], inplace=step.kernel == "te_add_inplace_s8")
    ed.rewrite(step, kernel, [0, 1], tables, ["table1", "table2"], fields)


# --------------------------------------------------------------------------- driver
_HANDLERS: Dict[str, Callable[..., None]] = {
    "te_conv2d_s8": _select_conv,
    "te_depthwise_conv2d_s8": _select_depthwise,
    "te_depthwise_conv2d_inplace_s8": _select_depthwise,
    "te_fully_connected_s8": _select_fc,
    "te_conv2d_s16": _packed_by(pack_conv_s16),
    "te_fully_connected_s16": _packed_by(pack_fc_s16),
    "te_depthwise_conv2d_s16": _packed_by(pack_depthwise_line_s16),
    "te_lstm_s8": _select_lstm,
    "te_lstm_s16": _select_lstm,
    "te_transpose_conv2d_s8": _packed_by(pack_transpose_conv),
    "te_transpose_conv2d_s16": _packed_by(pack_transpose_conv_s16),
    "te_batch_matmul_s8": _select_batch_matmul,
    "te_svdf_s8": _select_svdf,
    "te_add_s8": _select_add,
    "te_add_inplace_s8": _select_add,
}


#: Per-layer kernel variants (``select_kernels(variants=...)``, searched by ``tvmc tune``):
#: "dsp" the default choice; "portable" the portable kernel; "w8"/"w16" a convolution's
#: filter stored int8 or widened to int16 (more flash, fewer instructions) whatever its
#: size; "generic" a depthwise convolution's generic entry point instead of its shape's
#: specialized one; "narrow"/"narrow_w16" a convolution's one-column kernel
#: (te_arm_conv2d_narrow_s8 / _w16_s8: im2col of one output pixel at a time, about a
#: quarter of the scratch, more instructions) with its filter stored int8 or int16 (the
#: memory variants: what ``compile(narrow_at_peak=True)`` gives the layers at the arena peak).
VARIANTS = ("dsp", "portable", "w8", "w16", "generic", "narrow", "narrow_w16")

#: The one-column convolution variants; the one for a layer whose kernel is now the block one.
NARROW_VARIANTS = ("narrow", "narrow_w16")
NARROW_KERNELS = {"te_arm_conv2d_s8": "narrow", "te_arm_conv2d_w16_s8": "narrow_w16"}


def layer_name(step_name: str) -> str:
    """The model layer a step computes: its name without the bracketed suffixes the
    compiler adds (``conv1[patch 3]`` is a part of ``conv1``)."""
    name = step_name
    while name.endswith("]") and "[" in name:
        name = name[:name.rindex("[")]
    return name or step_name


def _step_variants(step: Step) -> Tuple[str, ...]:
    """The variants a step with an optimized kernel can take (the first is the default);
    the step may be before selection or after it (then its portable kernel is in its notes)."""
    kernel = step.notes.get("portable_kernel", step.kernel)
    if kernel not in _HANDLERS:
        return ()
    if kernel == "te_conv2d_s8":
        return ("dsp", "portable", "w8", "w16", "narrow", "narrow_w16")
    if kernel in ("te_depthwise_conv2d_s8", "te_depthwise_conv2d_inplace_s8"):
        from ..kernels.arm import dw_specialized

        if not is_line_depthwise(step.attrs) and dw_specialized(step.attrs):
            return ("dsp", "portable", "generic")
    return ("dsp", "portable")


def layer_variants(graph: KernelGraph, core) -> Dict[str, Tuple[str, ...]]:
    """For each layer of ``graph`` (by :func:`layer_name`) with a choice of kernel on
    ``core``, the variants it can take (the default first); empty for cores without DSP."""
    from ..targets.cores import get_core

    c = get_core(core) if isinstance(core, str) else core
    out: Dict[str, Tuple[str, ...]] = {}
    if not c.dsp:
        return out
    for step in graph.steps:
        choices = _step_variants(step)
        if choices:
            name = layer_name(step.name)
            out[name] = tuple(dict.fromkeys(out.get(name, ()) + choices))
    return out


def _check_variants(graph: KernelGraph, core, variants: Dict[str, str]) -> None:
    from ..errors import UsageError
    from ..naming import quote_name

    known = layer_variants(graph, core)
    for name, v in variants.items():
        if v not in VARIANTS:
            raise UsageError(f"kernel variant {v!r} for layer {quote_name(name, 80)}: one of {', '.join(VARIANTS)}")
        if name not in known:
            raise UsageError(f"kernel variant for layer {quote_name(name, 80)}: no such layer with a choice of "
                             f"kernel on this core ({len(known)} layers have one)")
        if v not in known[name]:
            raise UsageError(f"kernel variant {v!r} does not apply to layer {quote_name(name, 80)}; "
                             f"its variants: {', '.join(known[name])}")


def select_kernels(graph: KernelGraph, core, keep_portable=(), variants: Optional[Dict[str, str]] = None
                   ) -> Tuple[KernelGraph, Dict]:
    """Optimized kernels for ``core`` (a name or :class:`~tinyengine_tvm.targets.Core`).

    Returns the rewritten graph (constants the optimized kernels no longer read
    dropped) and a report: {"core": name, "optimized": number of steps,
    "refused": [(step name, portable kernel, reason)]}.  Cores without DSP
    keep the graph (and its portable kernels).  Steps whose indices are in
    ``keep_portable`` are left alone (the caller's memory policy).
    ``variants`` maps layer names (:func:`layer_name`) to a :data:`VARIANTS`
    entry each; a layer or variant that does not apply is a UsageError.
    """
    from ..targets.cores import get_core

    c = get_core(core) if isinstance(core, str) else core
    report = {"core": c.name, "optimized": 0, "refused": []}
    variants = dict(variants or {})
    if variants:
        _check_variants(graph, c, variants)
    if not c.dsp:
        return graph, report
    ed = _Editor(graph)
    for index, step in enumerate(graph.steps):
        handler = _HANDLERS.get(step.kernel)
        if handler is None:
            continue
        variant = variants.get(layer_name(step.name), "dsp")
        if variant not in _step_variants(step):
            variant = "dsp"  # a part of the layer the variant does not fit (e.g. a border patch)
        if index in keep_portable or variant == "portable":
            why = "its scratch would raise the arena" if index in keep_portable else "kernel variant 'portable'"
            report["refused"].append((step.name, step.kernel, why))
            continue
        try:
            handler(ed, step, variant)
            report["optimized"] += 1
        except _Refuse as why:
            step.notes = dict(step.notes, kernel_note=f"portable: {why}")
            report["refused"].append((step.name, step.kernel, str(why)))
    if variants:
        report["variants"] = dict(sorted(variants.items()))
    return _compact(graph), report


__all__ = ["DSP_CORES", "VARIANTS", "select_kernels", "layer_variants", "layer_name", "add_table"]
