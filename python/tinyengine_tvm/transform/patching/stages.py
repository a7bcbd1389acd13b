"""Which runs of steps can run patch by patch (stages), and the windows one patch needs."""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

from ...kernel_graph import KernelGraph, Step
from .geometry import BINARY, CONCAT, PAD, PATCHABLE, Window, input_window


def _is_spatial(shape: Sequence[int]) -> bool:
    return len(shape) == 4 and shape[0] == 1


def whole_operand(step: Step, k: int) -> bool:
    """Whether input k of a binary step is broadcast over the spatial axes (read whole, e.g. an SE gate)."""
    strides = step.attrs[f"input{k + 1}_strides"]
    return strides[1] == 0 and strides[2] == 0


def _refusal(graph: KernelGraph, step: Step) -> Optional[str]:
    """Why ``step`` cannot be part of a patch stage (None: it can)."""
    out = graph.tensors[step.output]
    if step.notes.get("patch_of") is not None:
        return "it already runs patch by patch"
    if step.kernel not in PATCHABLE:
        return "it is not spatially local (or has no patch form)"
    if not _is_spatial(out.shape) or out.shape[1] * out.shape[2] < 2:
        return f"its output {out.shape} is not an NHWC map of batch 1"
    if graph.tensors[step.output].view_of is not None:
        return "it writes in place"
    if step.kernel in BINARY:
        for k, i in enumerate(step.inputs):
            if graph.tensors[i].kind == "constant" and not whole_operand(step, k):
                return "a constant operand varies over the map"
            strides = step.attrs[f"input{k + 1}_strides"]
            if (strides[1] == 0) != (strides[2] == 0):
                return "it broadcasts along one spatial axis only"
    if step.kernel in CONCAT and (step.attrs["inner"] != 1 or step.attrs["outer"] != out.shape[1] * out.shape[2]):
        return "it does not concatenate along channels"
    if step.kernel in PAD and (step.attrs["before"][0] or step.attrs["after"][0]):
        return "it pads the batch axis"
    return None


@dataclasses.dataclass
class Stage:
    """Steps ``first..last`` (schedule order) run patch by patch."""

    first: int
    last: int
    sources: List[int]  # full tensors read through windows (produced before the stage)
    whole: List[int]  # full tensors read whole (broadcast operands)
    output: int

    @property
    def steps(self) -> range:
        """Step indices of the stage, in order."""
        return range(self.first, self.last + 1)


def find_stages(graph: KernelGraph) -> Tuple[List[Stage], Dict[int, str]]:
    """Every run of steps that can run patch by patch, and per step the reason it cannot
    be in a stage (for the report when nothing is patched)."""
    n = len(graph.steps)
    refusals = {s: r for s, step in enumerate(graph.steps) if (r := _refusal(graph, step)) is not None}
    last_use: Dict[int, int] = {}
    for s, step in enumerate(graph.steps):
        for i in step.inputs:
            last_use[graph.root(i)] = s
    outputs = {graph.root(t) for t in graph.outputs + graph.persistent}
    stages = []
    for first in range(n):
        produced: Dict[int, int] = {}
        sources, whole = [], []
        for last in range(first, n):
            step = graph.steps[last]
            if last in refusals:
                break
            ok = True
            for k, i in enumerate(step.inputs):
                t = graph.tensors[i]
                if t.kind == "constant":
                    continue
                if i in produced:
                    continue
                if graph.root(i) in produced:
                    ok = False  # a view of a stage tensor
                    break
                if step.kernel in BINARY and whole_operand(step, k):
                    whole.append(i) if i not in whole else None
                elif _is_spatial(t.shape):
                    sources.append(i) if i not in sources else None
                else:
                    ok = False
                    break
            if not ok:
                break
            produced[step.output] = last
            if last == first:
                continue
            crossing = {t for t in produced if last_use.get(t, -1) > last or t in outputs}
            if crossing == {step.output} and not (set(sources) & set(whole)):
                stages.append(Stage(first, last, list(sources), list(whole), step.output))
    return stages, refusals


def stage_windows(graph: KernelGraph, stage: Stage, out_window: Window) -> Dict[int, Window]:
    """Window of every stage tensor and source needed for one patch of the stage output."""
    need: Dict[int, Window] = {stage.output: out_window}
    for s in reversed(stage.steps):
        step = graph.steps[s]
        if step.output not in need:
            continue
        for k, i in enumerate(step.inputs):
            if graph.tensors[i].kind == "constant" or i in stage.whole:
                continue
            _, h, w, _ = graph.tensors[i].shape
            need[i] = input_window(step.kernel, step.attrs, need[step.output], h, w).union(need.get(i))
    return need
