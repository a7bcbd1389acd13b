"""The training step as a Relax function (training/backward.py).

A Before/Expected TVMScript test of the rules on a one-layer model, the
``AppendTrainingStep`` pass composed with ``tvm.transform``, and the Relax
properties every generated ``train_step`` must have: well-formed, the
trained parameters as parameters paired with their updated values, and
sound in-place calls (nothing reads a value after a call wrote over it).
"""
from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm import relax
from tvm.script import relax as R

from tinyengine_tvm.kernel_call import parse_kernel_call
from tinyengine_tvm.kernels import inplace_kernels
from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph
from tinyengine_tvm.training import TrainingConfig, compile_training
from tinyengine_tvm.training.backward import PHASE, TRAIN_STEP, AppendTrainingStep, build_training_graph
from tinyengine_tvm.training.forward import lower_forward
from tinyengine_tvm.training.quantization import ModelQuant, OperatorQuant
from tinyengine_tvm.transform.relax_utils import bindings

FC = '{"act_max":127,"act_min":-128,"batch":1,"input_depth":3,"input_offset":5,"output_depth":2}'
GRAD = '{"accumulate":0,"batch":1,"input_depth":3,"input_offset":5,"input_scale":0.25,"output_depth":2}'
SGD = '{"accumulate":0,"batch":1,"input_depth":3,"input_offset":5,"input_scale":0.25,"learning_rate":0.5,"output_depth":2}'


@R.function(private=True)
def before(x: R.Tensor((1, 3), "int8")) -> R.Tensor((1, 2), "int8"):
    with R.dataflow():
        fc = R.call_dps_packed("te_fully_connected_s8",
                               (x, R.const([[1, 2, 3], [4, 5, 6]], "int8"), R.const([7, 8], "int32"),
                                R.const([1 << 30, 1 << 30], "int32"), R.const([0, 0], "int32"), R.str(FC)),
                               out_ty=R.Tensor((1, 2), "int8"))
        R.output(fc)
    return fc


@R.function(pure=False, private=True)
def expected(x: R.Tensor((1, 3), "int8"), label: R.Tensor((1,), "int32"), w: R.Tensor((2, 3), "int8"),
             b: R.Tensor((2,), "int32")) -> R.Tuple(R.Tensor((1, 2), "int8"), R.Tensor((1,), "float32"),
                                                    R.Tensor((2, 3), "int8"), R.Tensor((2,), "int32")):
    R.func_attr({"tinyengine.variables": [["fc.weight", 2, 2], ["fc.bias", 3, 3]]})
    fc = R.call_dps_packed("te_fully_connected_s8",
                           (x, w, b, R.const([1 << 30, 1 << 30], "int32"), R.const([0, 0], "int32"), R.str(FC)),
                           out_ty=R.Tensor((1, 2), "int8"))
    ce = R.call_dps_packed("te_softmax_cross_entropy_s8",
                           (fc, label, R.str('{"batch":1,"classes":2,"input_scale":0.5}'), R.str('{"phase":"loss"}')),
                           out_ty=[R.Tensor((1, 2), "float32"), R.Tensor((1,), "float32")])
    dz: R.Tensor((1, 2), "float32") = ce[0]
    loss: R.Tensor((1,), "float32") = ce[1]
    # dY masked at the clamp, in place; the weights updated row by row (no filter-sized gradient)
    dy = R.call_dps_packed("te_activation_grad_inplace_s8",
                           (dz, fc, R.str('{"act_max":127,"act_min":-128,"size":2}'), R.str('{"phase":"backward"}')),
                           out_ty=R.Tensor((1, 2), "float32"))
    w_new = R.call_dps_packed("te_fully_connected_sgd_s8",
                              (w, dy, x, R.const([0.25, 0.125], "float32"), R.str(SGD), R.str('{"phase":"update"}')),
                              out_ty=R.Tensor((2, 3), "int8"))
    db = R.call_dps_packed("te_fully_connected_grad_bias_s8",
                           (dy, R.const([0.25, 0.125], "float32"), R.str(GRAD), R.str('{"phase":"backward"}')),
                           out_ty=R.Tensor((2,), "float32"))
    b_new = R.call_dps_packed("te_qas_sgd_s32",
                              (b, db, R.const([0.25, 0.125], "float32"),
                               R.str('{"channels":2,"inner":1,"input_scale":0.25,"learning_rate":0.5,"momentum":0.0,'
                                     '"size":2}'),
                               R.str('{"phase":"update"}')),
                              out_ty=R.Tensor((2,), "int32"))
    return (fc, loss, w_new, b_new)


def one_layer_quant() -> ModelQuant:
    fc = OperatorQuant("FULLY_CONNECTED", "x", 0.25, -5, np.array([0.25, 0.125]), 0.5, 0)
    return ModelQuant({"x": (0.25, -5), "fc": (0.5, 0)}, {"fc": fc})


def test_rules_before_expected():
    """The loss, the masked dY, the fused row-by-row FC weight update and the bias's QAS update."""
    training = build_training_graph(before, one_layer_quant(), TrainingConfig(biases="all", weights=[0],
                                                                               learning_rate=0.5))
    got = training.module[TRAIN_STEP]
    tvm.ir.assert_structural_equal(got, expected)
    assert [p.name for p in got.params] == ["x", "label", "fc.weight", "fc.bias"]
    # read back: the parameters are resource variables (SRAM), the loss an output
    g = training.graph
    assert [g.tensors[i].name for i in g.inputs] == ["x", "label"]
    assert [name for name, _, _ in g.variables] == ["fc.weight", "fc.bias"]
    assert g.tensors[training.loss].name == "loss" and training.loss in g.outputs
    assert training.forward_steps == 1
    assert [s.kernel for s in g.steps] == ["te_fully_connected_s8", "te_buffer", "te_softmax_cross_entropy_s8",
                                           "te_activation_grad_inplace_s8", "te_fully_connected_sgd_s8",
                                           "te_fully_connected_grad_bias_s8", "te_qas_sgd_s32"]
    np.testing.assert_array_equal(training.parameters[0].initial, [[1, 2, 3], [4, 5, 6]])


def test_frozen_weights_stay_constants():
    """Biases only: the filter stays a constant of the forward call, no weight gradient is built."""
    training = build_training_graph(before, one_layer_quant(), TrainingConfig(biases="all", weights=[]))
    func = training.module[TRAIN_STEP]
    assert [p.name for p in func.params] == ["x", "label", "fc.bias"]
    fc = parse_kernel_call(bindings(func)[0].value)
    assert isinstance(fc.tensors[1], tvm.ir.Constant)
    kernels = [parse_kernel_call(b.value).kernel for b in bindings(func) if parse_kernel_call(b.value)]
    assert "te_fully_connected_sgd_s8" not in kernels and "te_fully_connected_grad_weights_s8" not in kernels


def residual_cnn() -> bytes:
    g = QuantizedGraph(seed=3, samples=16)
    x = g.input((1, 8, 8, 2))
    h = g.conv2d(x, 8, (3, 3), (1, 1), (1, 1), "SAME", "RELU", True, prefix="stem")
    y = g.conv2d(h, 8, (1, 1), (1, 1), (1, 1), "SAME", "RELU", True, prefix="expand")
    y = g.depthwise_conv2d(y, (3, 3), (1, 1), (1, 1), "SAME", 1, "RELU", True, prefix="dw")
    y = g.conv2d(y, 8, (1, 1), (1, 1), (1, 1), "SAME", "NONE", True, prefix="project")
    h = g.add(h, y, "NONE", prefix="add")
    h = g.avg_pool(h, (2, 2), (2, 2), "VALID", prefix="pool")
    h = g.mean(h, (1, 2), keep_dims=False, prefix="mean")
    h = g.fully_connected(h, 4, "NONE", prefix="fc")
    return g.finish([g.softmax(h, prefix="softmax")])


CONFIGS = [dict(biases="all", weights=[]), dict(biases=[3, 4], weights=[4], momentum=0.9),
           dict(biases="all", weights=[0, 1, 2, 3, 4], channel_ratio={1: 0.5})]


@pytest.mark.parametrize("config", CONFIGS, ids=["biases", "last-momentum", "all"])
def test_train_step_is_sound_relax(config):
    """Well-formed; parameters paired with updated outputs; no value read after an in-place call
    wrote over it (so the in-place kernels keep Relax's value semantics)."""
    compiled = compile_training(residual_cnn(), config)
    mod = compiled.training.module
    relax.analysis.well_formed(mod)  # raises on an ill-formed module
    func = mod[TRAIN_STEP]
    rows = [[str(n), int(i), int(o)] for n, i, o in func.attrs["tinyengine.variables"]]
    names = [p.name for p in compiled.training.parameters]
    assert [r[0] for r in rows] == names and [p.name for p in func.params[2:]] == names
    ret = func.body.body.fields
    defs = {b.var: b.value for b in bindings(func)}
    for name, i, o in rows:  # each updated value is an update call writing over its parameter
        call = parse_kernel_call(defs[ret[o]])
        assert call.notes[PHASE] == "update" and call.tensors[0].same_as(func.params[i])
    inplace = inplace_kernels()
    seq = bindings(func)
    for k, b in enumerate(seq):
        call = parse_kernel_call(b.value)
        if call is None or call.kernel not in inplace:
            continue
        overwritten = call.tensors[0]
        later = [c.var.name for c in seq[k + 1:] if overwritten in relax.analysis.free_vars(c.value)]
        assert not later, f"{b.var.name} writes over {overwritten.name}, which {later} read afterwards"
    phases = [parse_kernel_call(b.value).notes.get(PHASE, "forward") for b in seq if parse_kernel_call(b.value)]
    first = phases.index("loss")
    assert set(phases[:first]) == {"forward"} and "forward" not in phases[first:]


def test_append_training_step_composes_with_tvm_transform():
    """The pass adds train_step beside main, which it leaves alone."""
    model = residual_cnn()
    fwd = lower_forward(model)
    config = TrainingConfig(biases=[4], weights=[4])
    seq = tvm.transform.Sequential([AppendTrainingStep(fwd.quant, config)])
    out = seq(fwd.lowered)
    assert out["main"].same_as(fwd.lowered["main"])
    tvm.ir.assert_structural_equal(out[TRAIN_STEP],
                                   build_training_graph(fwd.lowered["main"], fwd.quant, config).module[TRAIN_STEP])
