"""compile(): model file (or Relax IRModule) -> planned, generated C, in memory.

Nothing touches the file system until :meth:`CompiledModel.export`, so a model
that fails anywhere in import, lowering or planning leaves no partial output.
"""
from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import tvm

from .codegen import CWriter
from .errors import MemoryBudgetError, TinyEngineError, UsageError
from .frontend import ImportedModel, TensorDesc, load_model
from .frontend.loader import model_c_name
from .kernel_graph import KernelGraph
from .kernels import kernel_dir, kernel_sources_for, macs, op_type, steps_scratch
from .kernels import spec as kernel_spec
from .planner import plan_arena
from .transform import LowerToIntegerKernels
from .transform.int8_io import Int8IO
from .transform.nhwc_input import NHWCInput
from .transform.pipeline import attach_options, optimization_passes
from .transform.relax_utils import pass_reports
from .output_paths import GENERATOR, FileTarget, check_output_dir, check_output_file, staged_dir, write_file
from .runtime.project import previous_project_reason, previous_project_tar_reason


class CompiledModel:
    """A compiled model: its generated files (text), metadata and host runner."""

    def __init__(self, name: str, files: Dict[str, str], metadata: dict, lowered: tvm.IRModule):
        self.name = name
        self.files = files
        self.metadata = metadata
        self.lowered = lowered
        self.compile_seconds = 0.0
        self._host = None

    def export(self, path: str, keep: Sequence[str] = ()) -> str:
        """Write the project to a directory, or to a tarball when ``path`` ends in .tar.

        The directory must be new, empty or a previous project of this tool
        holding nothing else, and ``keep`` (e.g. the model file) must not be
        inside it; anything else raises UsageError before writing (see
        ``output_paths``).
        """
        target = check_export_path(path, keep)
        if isinstance(target, FileTarget):
            return write_file(target, self._write_tar)
        with staged_dir(target) as staging:
            for rel, text in self.files.items():
                full = os.path.join(staging, rel)
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, "w") as f:
                    f.write(text)
        return path

    def _write_tar(self, path: str) -> None:
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
            for rel in sorted(self.files):
                data = self.files[rel].encode()
                info = tarfile.TarInfo(rel)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))

    def run(self, inputs, **kwargs) -> Dict[str, np.ndarray]:
        """Run the generated C on this host (built once with gcc) and return the
        outputs.  Streaming operators' state (SVDF) carries from one call to the
        next, as on the device; :meth:`reset` starts a new stream."""
        from .runtime.host import HostModel

        if self._host is None:
            build_dir = tempfile.mkdtemp(prefix=f"tinyengine-{self.name}-")
            self.export(os.path.join(build_dir, "project"))
            self._host = HostModel(os.path.join(build_dir, "project"), **kwargs)
        return self._host.run(inputs)

    def reset(self) -> None:
        """Forget the state streaming operators keep between runs (``<name>_reset()``)."""
        if self._host is not None:
            self._host.reset()


def check_export_path(path: str, keep: Sequence[str] = ()):
    """Check where :meth:`CompiledModel.export` may write (before compiling)."""
    if os.fspath(path).endswith(".tar"):
        return check_output_file(path, "output", (".tar",), previous_project_tar_reason, keep)
    return check_output_dir(path, "output directory", previous_project_reason, keep)


def _imported_from_irmodule(mod: tvm.IRModule, name: str) -> ImportedModel:
    func = mod["main"]
    inputs = [TensorDesc(p.name, [int(d) for d in p.ty.shape], str(p.ty.dtype)) for p in func.params]
    ret = func.ret_ty if hasattr(func, "ret_ty") else func.body.body.ty
    rets = list(ret.fields) if hasattr(ret, "fields") else [ret]
    outputs = [TensorDesc(f"output_{i}", [int(d) for d in r.shape], str(r.dtype)) for i, r in enumerate(rets)]
    return ImportedModel(name=name, format="relax", mod=mod, inputs=inputs, outputs=outputs)


def compile(model: Union[str, bytes, tvm.IRModule], name: Optional[str] = None,  # noqa: A001
            passes: Optional[List[tvm.transform.Pass]] = None, optimize: bool = True,
            disabled_passes: Sequence[str] = (), pass_config: Optional[Dict[str, Any]] = None,
            sram_budget: Optional[int] = None, core: Optional[str] = None,
            keep_portable_arena: bool = False, int8_io: bool = False, nhwc_input: bool = False,
            tuning_records: Optional[str] = None, kernel_variants: Optional[Dict[str, str]] = None,
            narrow_at_peak: bool = False) -> CompiledModel:
    """Compile an int8 TFLite/ONNX model (path or bytes) or a QDQ Relax IRModule to C.

    After integer lowering the default memory passes run (see
    ``transform.pipeline``) unless ``optimize`` is False; ``disabled_passes``
    and ``pass_config`` adjust them, and ``passes`` are extra
    ``tvm.transform`` passes run last.  With ``sram_budget`` a plan whose arena
    exceeds it raises MemoryBudgetError naming the peak operator.
    With ``core`` ("cortex-m4", "cortex-m7", "cortex-m55"; None = portable
    kernels only) the Cortex-M optimized kernels are selected where the shapes
    allow (``codegen.kernel_selection``); the project still builds anywhere.
    Their scratch can add up to ~1.3 KB to the arena on the shared models;
    ``keep_portable_arena`` keeps the portable kernel wherever that scratch
    would make the arena larger than the portable plan's (slower).
    ``kernel_variants`` ({layer name: variant}, see
    ``codegen.kernel_selection.VARIANTS``) overrides the kernel choice per layer
    (what ``tvmc tune`` searches); it needs a core with DSP.
    ``narrow_at_peak`` gives the convolutions whose im2col scratch is live at the
    arena peak the one-column kernel ("narrow"/"narrow_w16" variants: about a
    quarter of the scratch, more instructions), as long as that lowers the arena;
    metadata's ``kernel_selection["narrowed"]`` lists them.
    With ``int8_io`` float32 inputs/outputs quantized/dequantized at the
    boundary become the int8 tensors around them (``transform.int8_io``); the
    header and metadata give their scale and zero point.  With ``nhwc_input``
    an input transposed from NCHW to NHWC first is taken as NHWC
    (``transform.nhwc_input``).
    With ``tuning_records`` (a file of ``tvmc tune``) the fastest record of this
    model (by content) for ``core`` whose arena is within ``sram_budget`` sets
    the configuration (options given here win over the record's); metadata's
    ``tuning`` says which record, or why none applied.
    Raises ModelFormatError / UnsupportedModelError before producing anything.
    """
    t0 = time.perf_counter()
    tuning = None
    if tuning_records is not None:
        from .tune.apply import apply_tuning_records

        tuning, tuned = apply_tuning_records(tuning_records, model, core, sram_budget)
        disabled_passes = sorted(set(disabled_passes) | set(tuned["disabled_passes"]))
        pass_config = {**tuned["pass_config"], **(pass_config or {})}
        keep_portable_arena = keep_portable_arena or tuned["keep_portable_arena"]
        kernel_variants = {**tuned.get("kernel_variants", {}), **(kernel_variants or {})}
        narrow_at_peak = narrow_at_peak or tuned.get("narrow_at_peak", False)
    if kernel_variants and core is None:
        raise UsageError("kernel variants choose among a core's optimized kernels: give a core "
                         "(cortex-m4, cortex-m7 or cortex-m55)")
    if isinstance(model, tvm.IRModule):
        imported = _imported_from_irmodule(model, model_c_name(name or "model"))
    else:
        imported = load_model(model, name)
    optimizations = optimization_passes(disabled_passes, pass_config) if optimize else []
    lowered = LowerToIntegerKernels()(imported.mod)
    # The options reach the passes through the PassContext (transform.pipeline);
    # the passes' reports are main's tinyengine.pass_reports, past those it came with.
    earlier = len(pass_reports(lowered["main"]))
    if nhwc_input:
        lowered = NHWCInput()(lowered)
        _apply_boundary(imported, pass_reports(lowered["main"])[-1])
    if int8_io:
        lowered = Int8IO()(lowered)
        _apply_boundary(imported, pass_reports(lowered["main"])[-1])
    with attach_options(pass_config if optimize else None):
        lowered = tvm.transform.Sequential(optimizations + list(passes or []), name="tinyengine")(lowered)
    reports = pass_reports(lowered["main"])[earlier:]
    graph = KernelGraph.from_relax(lowered["main"])
    selection = None
    plan = plan_arena(graph, steps_scratch(graph.steps))
    if core is not None:  # Cortex-M optimized kernels (codegen/kernel_selection.py)
        limit = plan.arena_bytes if keep_portable_arena else None
        graph, plan, selection = _select_within_arena(lowered, core, limit, kernel_variants, narrow_at_peak)
    _fill_io_from_graph(imported, graph)
    writer = CWriter(imported.name, graph, plan, imported.inputs, imported.outputs,
                     {v.name: v.initial for v in imported.variables})
    files = project_files(imported.name, writer, graph)
    metadata = _metadata(imported, graph, plan, reports)
    if selection is not None:
        metadata["kernel_selection"] = selection
    if tuning is not None:
        metadata["tuning"] = tuning
    if sram_budget is not None and plan.arena_bytes > sram_budget:
        raise MemoryBudgetError(_budget_message(metadata, sram_budget))
    metadata["generator"] = GENERATOR
    metadata["files"] = sorted([*files, "metadata.json"])
    files["metadata.json"] = json.dumps(metadata, indent=2, sort_keys=False) + "\n"
    compiled = CompiledModel(imported.name, files, metadata, lowered)
    compiled.graph, compiled.plan = graph, plan
    compiled.compile_seconds = time.perf_counter() - t0
    return compiled


def _select_within_arena(lowered: tvm.IRModule, core: str, arena_limit: Optional[int],
                         variants: Optional[Dict[str, str]] = None, narrow_at_peak: bool = False):
    """Optimized kernels for ``core``; with ``narrow_at_peak``, the convolutions whose
    scratch is live at the peak take their one-column kernel while that lowers the
    arena; then, with ``arena_limit``, the steps whose scratch would push the arena
    above it keep their portable kernel."""
    from .codegen.kernel_selection import select_kernels

    keep: set = set()
    given = dict(variants or {})
    variants = dict(given)
    while True:
        graph, selection = select_kernels(KernelGraph.from_relax(lowered["main"]), core, keep, variants)
        plan = plan_arena(graph, steps_scratch(graph.steps))
        if narrow_at_peak:
            graph, plan, selection, variants = _narrow_at_peak(lowered, core, keep, variants, graph, plan, selection)
            selection["narrowed"] = sorted(k for k, v in variants.items() if given.get(k) != v)
        if arena_limit is None or plan.arena_bytes <= arena_limit:
            return graph, plan, selection
        scratch_steps = [s for s in range(len(graph.steps)) if ("scratch", s) in plan.buffers and s not in keep]
        over = [s for s in scratch_steps if plan.live_bytes(s) > arena_limit]
        if not scratch_steps:
            return graph, plan, selection  # not caused by scratch: keep the faster kernels
        keep.update(over or scratch_steps)


def _narrow_at_peak(lowered: tvm.IRModule, core: str, keep: set, variants: Dict[str, str], graph, plan, selection):
    """(graph, plan, selection, variants) with the one-column convolution kernel for
    every layer whose block kernel's scratch is live at the live-set peak, repeated
    while the arena shrinks (a change that does not lower it is not made)."""
    from .codegen.kernel_selection import NARROW_KERNELS, layer_name, select_kernels

    while True:
        peak = plan.live_peak
        more = {layer_name(st.name): NARROW_KERNELS[st.kernel] for s, st in enumerate(graph.steps)
                if st.kernel in NARROW_KERNELS and ("scratch", s) in plan.buffers and plan.live_bytes(s) == peak}
        if not more:
            break
        trial = {**variants, **more}
        g2, sel2 = select_kernels(KernelGraph.from_relax(lowered["main"]), core, keep, trial)
        p2 = plan_arena(g2, steps_scratch(g2.steps))
        if p2.arena_bytes >= plan.arena_bytes:
            break
        graph, plan, selection, variants = g2, p2, sel2, trial
    return graph, plan, selection, variants


def _fill_io_from_graph(imported: ImportedModel, graph: KernelGraph) -> None:
    if len(imported.inputs) != len(graph.inputs) or len(imported.outputs) != len(graph.outputs):
        raise TinyEngineError("the lowered model's inputs/outputs do not match the model file's")
    for desc, idx in zip(imported.inputs + imported.outputs, graph.inputs + graph.outputs):
        t = graph.tensors[idx]
        if list(t.shape) != list(desc.shape) or t.dtype != desc.dtype:
            raise TinyEngineError(f"tensor '{desc.name}': lowered as {t.dtype}{t.shape}, model says {desc.dtype}{desc.shape}")


def _apply_boundary(imported: ImportedModel, report: Dict[str, Any]) -> None:
    """The I/O descriptions after Int8IO or NHWCInput: the tensors the API now takes and gives."""
    for descs, changes in ((imported.inputs, report["inputs"]), (imported.outputs, report.get("outputs", []))):
        for k, change in enumerate(changes):
            if change is None:
                continue
            d = descs[k]
            if "scale" in change:  # Int8IO
                descs[k] = TensorDesc(change["name"], list(d.shape), "int8", change["scale"], change["zero_point"])
            else:  # NHWCInput
                descs[k] = TensorDesc(change["name"], list(change["shape"]), d.dtype, d.scale, d.zero_point)


def project_files(name: str, writer, graph: KernelGraph) -> Dict[str, str]:
    """The generated project's sources: the model's header, schedule and weights from
    ``writer`` (a CWriter), the kernels' header and the kernel sources ``graph``'s steps call."""
    files = {
        f"include/{name}.h": writer.header(),
        f"src/{name}.c": writer.source(),
        f"src/{name}_weights.c": writer.weights(),
    }
    kdir = kernel_dir()
    files["include/tinyengine_kernels.h"] = _read(os.path.join(kdir, "include", "tinyengine_kernels.h"))
    for src in kernel_sources_for(s.kernel for s in graph.steps):
        files[f"src/kernels/{os.path.basename(src)}"] = _read(os.path.join(kdir, "kernels", src))
    return files


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _metadata(imported: ImportedModel, graph: KernelGraph, plan, passes) -> dict:
    ops = []
    # Buffers are named after the model tensor they hold (a kernel's scratch after
    # the kernel's output); a buffer an in-place kernel overwrites takes the name of
    # that kernel's output from then on (a PASTE only fills part of its buffer).
    names = {k: graph.tensors[k].name if not isinstance(k, tuple) else f"{graph.steps[k[1]].name}[{k[0]}]"
             for k in plan.buffers}
    for s, step in enumerate(graph.steps):
        spec = kernel_spec(step.kernel)
        root = graph.root(step.output)
        if root != step.output and root in names and not spec.partial_write:
            names[root] = graph.tensors[step.output].name
        ops.append({
            "name": step.name, "type": op_type(step.kernel, step.notes), "kernel": step.kernel,
            "macs": macs(step.kernel, step.attrs),
            "live_before": int(plan.live_before(s)),
            "live_bytes": int(plan.live_bytes(s)),
            "live_after": int(plan.live_after(s)),
            # In arena order.
            "live_buffers": [names[k] for k in sorted(plan.live_buffers(s), key=plan.offset_of)],
        })
    peak_step = max(range(len(ops)), key=lambda s: ops[s]["live_bytes"], default=None)
    weights = sum(t.nbytes for t in graph.constants)
    return {
        "model": imported.name,
        "format": imported.format,
        "int8_io": any(r.get("name") == "Int8IO" and r.get("changed") for r in passes),
        "nhwc_input": any(r.get("name") == "NHWCInput" and r.get("changed") for r in passes),
        "inputs": [d.to_json() for d in imported.inputs],
        "outputs": [d.to_json() for d in imported.outputs],
        "variables": [{"name": v.name, "shape": v.shape, "dtype": v.dtype, "bytes": v.nbytes}
                      for v in imported.variables],
        "memory": {
            "arena_contents": "model inputs while needed, activations, outputs, kernel scratch, "
                              "operator state and resource variables kept between invocations",
            "arena_bytes": int(plan.arena_bytes),
            "scratch_bytes": int(plan.scratch_bytes),
            # Streaming operators' state and resource variables, kept between invocations.
            "state_bytes": int(plan.state_bytes) + sum(graph.tensors[v].nbytes for _, v, _ in graph.variables
                                                       if v is not None),
            "weights_bytes": int(weights),
            # Inputs and outputs live in the arena (written/read through
            # <name>_input()/<name>_output()); no caller-owned buffer is needed.
            "io_bytes": 0,
            "live_peak_bytes": int(plan.live_peak),
            "peak_op": ops[peak_step]["name"] if peak_step is not None else None,
            "peak_op_index": peak_step,
            "planner": plan.strategy,
        },
        "passes": [dict(report) for report in passes],  # the tinyengine.pass_reports of main
        "ops": ops,
        "total_macs": int(sum(o["macs"] for o in ops)),
    }


def _budget_message(meta: dict, budget: int) -> str:
    from .naming import buffer_list, describe_op

    mem = meta["memory"]
    over = mem["arena_bytes"] - budget
    peak = meta["ops"][mem["peak_op_index"]] if mem["peak_op_index"] is not None else None
    where = (f"; the peak is at {describe_op(meta, mem['peak_op_index'])} with "
             f"{peak['live_bytes']:,} B live ({buffer_list(peak['live_buffers'])})") if peak else ""
    return (f"{meta['model']} needs an arena of {mem['arena_bytes']:,} B, {over:,} B over the SRAM budget "
            f"of {budget:,} B{where}")
