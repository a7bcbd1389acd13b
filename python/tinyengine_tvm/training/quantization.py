"""The float quantization parameters the training kernels need, read from the TFLite file.

The inference lowering folds scales into fixed-point multipliers and shifts
(the integer kernels never see a float scale), but the gradients are real
numbers: the backward kernels need each trained layer's input scale and its
weights' per-channel scales, and the loss needs the logits' scale.  They are
read from the model's own tensors, by the tensor names the lowered graph keeps
(``frontend.tensor_names``).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import UnsupportedModelError


@dataclasses.dataclass
class OperatorQuant:
    """Quantization around one TFLite operator: its input, weights and output."""

    op_type: str
    input_name: str
    input_scale: float
    input_zero_point: int
    weight_scales: Optional[np.ndarray]  # per output channel (float64), None for weightless operators
    output_scale: float
    output_zero_point: int


@dataclasses.dataclass
class ModelQuant:
    """Per-tensor (scale, zero point) and per-operator quantization, by tensor name."""

    tensors: Dict[str, Tuple[float, int]]
    operators: Dict[str, OperatorQuant]  # keyed by the operator's (first) output tensor name

    def activation(self, name: str) -> Tuple[float, int]:
        """(scale, zero point) of the activation tensor ``name`` (UnsupportedModelError if unknown)."""
        if name not in self.tensors:
            raise UnsupportedModelError([("TRAINING", name, "no per-tensor quantization found for this activation "
                                          "in the model file")])
        return self.tensors[name]


def read_quantization(data: bytes) -> ModelQuant:
    """Read every tensor's and every operator's quantization of a TFLite flatbuffer."""
    import tflite

    from ..frontend.tflite import _op_names, _op_type, _quant, _tensor_name

    model = tflite.Model.GetRootAsModel(data, 0)
    sg = model.Subgraphs(0)
    names = _op_names()
    tensors: Dict[str, Tuple[float, int]] = {}
    for i in range(sg.TensorsLength()):
        scale, zp = _quant(sg.Tensors(i))
        if scale.size == 1:
            tensors[_tensor_name(sg, i)] = (float(scale[0]), int(zp[0]))
    operators: Dict[str, OperatorQuant] = {}
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        ins: List[int] = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
        outs: List[int] = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
        if not ins or not outs or ins[0] < 0:
            continue
        in_s, in_zp = _quant(sg.Tensors(ins[0]))
        out_s, out_zp = _quant(sg.Tensors(outs[0]))
        if in_s.size != 1 or out_s.size != 1:
            continue
        w_scales = None
        if len(ins) > 1 and ins[1] >= 0:
            ws, _ = _quant(sg.Tensors(ins[1]))
            if ws.size:
                w_scales = ws.astype(np.float64)
        operators[_tensor_name(sg, outs[0])] = OperatorQuant(
            _op_type(model, op, names), _tensor_name(sg, ins[0]), float(in_s[0]), int(in_zp[0]), w_scales,
            float(out_s[0]), int(out_zp[0]))
    return ModelQuant(tensors, operators)
