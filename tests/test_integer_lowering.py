"""LowerToIntegerKernels as a TVM pass: any function of any module, data in the IR, raised errors."""
import numpy as np
import pytest
import tvm
from tvm import relax

from tinyengine_tvm.errors import UnsupportedModelError
from tinyengine_tvm.frontend import load_model
from tinyengine_tvm.kernel_call import parse_kernel_call
from tinyengine_tvm.modelgen import quantized_ops as Q
from tinyengine_tvm.transform import LowerToIntegerKernels


def _kernel_calls(func):
    calls = []
    relax.analysis.post_order_visit(func.body, lambda e: calls.append(parse_kernel_call(e)))
    return [c for c in calls if c is not None]


def _float_helper():
    """A Relax function with no quantization: the pass must leave it alone."""
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((4,), "float32"))
    with bb.function("helper", [x]):
        with bb.dataflow():
            y = bb.emit_output(relax.op.add(x, x))
        bb.emit_func_output(y)
    return bb.get()["helper"]


def test_lowers_every_qdq_function_and_keeps_the_others():
    imported = load_model(Q.conv2d_model())
    main = imported.mod["main"]
    mod = tvm.IRModule({"classifier": main.with_attr("global_symbol", "classifier"), "helper": _float_helper()})
    out = LowerToIntegerKernels()(mod)
    assert {g.name_hint for g in out.functions} == {"classifier", "helper"}
    tvm.ir.assert_structural_equal(out["helper"], mod["helper"])
    calls = _kernel_calls(out["classifier"])
    assert [c.kernel for c in calls] == ["te_conv2d_s8"]
    assert out["classifier"].attrs["global_symbol"] == "classifier"


def test_idempotent():
    once = LowerToIntegerKernels()(load_model(Q.conv2d_model()).mod)
    twice = LowerToIntegerKernels()(once)
    assert [c.kernel for c in _kernel_calls(twice["main"])] == [c.kernel for c in _kernel_calls(once["main"])]


def test_softmax_beta_travels_in_the_ir():
    half = load_model(Q.softmax_model(beta=0.5)).mod
    ops = []
    relax.analysis.post_order_visit(half["main"].body, lambda e: ops.append(e.op.name)
                                    if isinstance(e, relax.Call) and isinstance(e.op, tvm.ir.Op) else None)
    assert "relax.multiply" in ops and "relax.nn.softmax" in ops
    one = load_model(Q.softmax_model(beta=1.0)).mod
    (k_half,) = _kernel_calls(LowerToIntegerKernels()(half)["main"])
    (k_one,) = _kernel_calls(LowerToIntegerKernels()(one)["main"])
    assert k_half.kernel == k_one.kernel == "te_softmax_s8"
    assert k_half.attrs != k_one.attrs  # beta changes the fixed-point input multiplier


def test_unlowerable_op_raises_with_its_problems():
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 8), "int8"))
    s, z = relax.const(0.05, "float32"), relax.const(0, "int32")
    with bb.function("main", [x]):
        with bb.dataflow():
            f = bb.emit(relax.op.dequantize(x, s, z, axis=-1), name_hint="deq")
            t = bb.emit(relax.op.sin(f), name_hint="model/sin")
            q = bb.emit_output(relax.op.quantize(t, relax.const(1 / 128, "float32"), z, axis=-1, out_dtype="int8"))
        bb.emit_func_output(q)
    with pytest.raises(UnsupportedModelError) as err:
        LowerToIntegerKernels()(bb.get())
    assert err.value.problems, str(err.value)
    assert any("sin" in p[0] or "sin" in p[1] for p in err.value.problems), err.value.problems


def test_bad_quantization_parameters_name_the_node():
    # A scale whose fixed-point multiplier does not exist: reported per node, not a ValueError.
    model = Q.softmax_model(beta=1e-9)
    with pytest.raises(UnsupportedModelError) as err:
        import tinyengine_tvm as te

        te.compile(model)
    assert "SOFTMAX" in str(err.value) or "softmax" in str(err.value)
    assert np.isfinite(1e-9)
