"""TensorFlow Lite Micro as the bit-exact reference (PyPI ``tflite-micro``)."""
from __future__ import annotations

import re
from typing import List, Optional, Sequence

import numpy as np


def _runtime():
    try:
        from tflite_micro import runtime
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the TFLM reference needs `pip install --pre tflite-micro`") from exc
    return runtime


def _num_outputs(model: bytes) -> int:
    import tflite

    return tflite.Model.GetRootAsModel(model, 0).Subgraphs(0).OutputsLength()


def tflm_run(model: bytes, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Run one inference in TFLM's Python interpreter; outputs in model order."""
    runtime = _runtime()
    interp = runtime.Interpreter.from_bytes(model, arena_size=_arena_size(model))
    for i, x in enumerate(inputs):
        interp.set_input(np.ascontiguousarray(x), i)
    interp.invoke()
    return [np.array(interp.get_output(i)) for i in range(_num_outputs(model))]


def _arena_size(model: bytes) -> Optional[int]:
    """An arena that holds every tensor of the model at once with room to spare
    for kernel scratch (the interpreter's default is too small for models with
    large tensors or scratch, e.g. a 1000-wide LOG_SOFTMAX)."""
    import tflite

    sg = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0)
    total = 0
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        total += int(np.prod(t.ShapeAsNumpy())) * 4 if t.ShapeLength() else 4
    return 2 * total + 64 * 1024


def tflm_tensors(model: bytes, inputs: Sequence[np.ndarray], tensors: Sequence[int]) -> List[np.ndarray]:
    """Run one inference in TFLM keeping every tensor; the values of ``tensors``
    (indices into subgraph 0) afterwards, e.g. the int8 tensors around a
    model's QUANTIZE and DEQUANTIZE."""
    runtime = _runtime()
    interp = runtime.Interpreter.from_bytes(
        model, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for i, x in enumerate(inputs):
        interp.set_input(np.ascontiguousarray(x), i)
    interp.invoke()
    return [np.array(interp.GetTensor(int(t), 0)["tensor_data"]) for t in tensors]


def random_inputs(descs: Sequence[dict], seed: int) -> List[np.ndarray]:
    """Inputs for a model's input descriptions, in model order (the runtime's draw)."""
    from ..runtime.project import random_arrays

    return random_arrays(list(descs), seed)


def tflm_arena_head(model: bytes) -> Optional[int]:
    """Bytes TFLM's planner gives the activations (the arena "head"), or None.

    Read from TFLM's allocation report, which its C++ side prints on the
    process's stdout/stderr, so both file descriptors are captured.
    """
    import os
    import tempfile

    runtime = _runtime()
    interp = runtime.Interpreter.from_bytes(model)
    with tempfile.TemporaryFile(mode="w+") as tmp:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(tmp.fileno(), 1)
            os.dup2(tmp.fileno(), 2)
            interp.print_allocations()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        tmp.seek(0)
        text = tmp.read()
    m = re.search(r"allocation head (\d+) bytes", text)
    return int(m.group(1)) if m else None


def litert_run(model: bytes, inputs: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Outputs of TFLite's own interpreter (ai-edge-litert, reference kernels): the reference for the
    operators TFLM has no int8 kernel for (NEG, RELU_N1_TO_1)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # The reference kernels (no XNNPACK delegate, whose int8 arithmetic differs).
    interp = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    interp.allocate_tensors()
    for d, x in zip(interp.get_input_details(), inputs):
        interp.set_tensor(d["index"], np.asarray(x))
    interp.invoke()
    return [interp.get_tensor(d["index"]).copy() for d in interp.get_output_details()]


def assert_matches_tflm(compiled, model: bytes, cases: Sequence[Sequence[np.ndarray]], run=None) -> None:
    """Assert ``compiled`` gives TFLM's outputs, as equal arrays, for every input case.

    ``run`` maps an input list to outputs (default: the host build of ``compiled``).
    """
    run = run or (lambda xs: list(compiled.run(xs).values()))
    for case in cases:
        expected = tflm_run(model, case)
        got = run(case)
        assert len(got) == len(expected), f"{len(got)} outputs, TFLM has {len(expected)}"
        for e, g in zip(expected, got):
            assert g.dtype == e.dtype and g.shape == e.shape, f"{g.dtype}{g.shape} vs TFLM {e.dtype}{e.shape}"
            np.testing.assert_array_equal(g, e)
