"""The memory passes as TVM passes: before/expected IR on small hand-written
lowered functions, what they keep of a module, their PassContext options and
their reports (function attribute ``tinyengine.pass_reports``).

The functions are written as integer lowering writes them:
``R.call_dps_packed("te_*", (tensors..., attrs_json), out_sinfo)``
(``kernel_call.make_kernel_call``).  Attribute values only need to be
consistent for the passes; nothing here runs a kernel.
"""
import numpy as np
import pytest
import tvm
from tvm import relax

from tinyengine_tvm.errors import UsageError
from tinyengine_tvm.kernel_call import make_kernel_call
from tinyengine_tvm.kernel_graph import KernelGraph
from tinyengine_tvm.planner import CostModel, kernel_scratch, plan_arena
from tinyengine_tvm.transform import (FoldPadIntoConv, InplaceDepthwise, InplaceElementwise, MemoryAwareSchedule,
                                      PatchBasedInference, attach_options, list_configs, optimization_passes,
                                      pass_context, pass_reports)
from tinyengine_tvm.transform.memory_schedule import search_schedule
from tinyengine_tvm.transform.pipeline import PASS_FACTORIES
from tinyengine_tvm.transform.relax_utils import REPORTS_ATTR, without_reports


# ----------------------------------------------------------------------------- building lowered functions


class _Emitter:
    def __init__(self, bb):
        self.bb = bb

    def call(self, name, kernel, tensors, attrs, shape, out=False):
        value = make_kernel_call(kernel, tensors, attrs, shape, "int8")
        return self.bb.emit_output(value, name_hint=name) if out else self.bb.emit(value, name_hint=name)


def make_func(inputs, body, attrs=None):
    """A lowered function: ``inputs`` [(name, shape)], ``body(emitter, *params)``
    emits the calls (the returned ones with ``out=True``) and returns the result."""
    params = [relax.Var(n, relax.TensorType(list(s), "int8")) for n, s in inputs]
    bb = relax.BlockBuilder()
    attrs = dict(attrs) if attrs is not None else {"global_symbol": "main", "num_input": len(params)}
    with bb.function("f", params, attrs=attrs, private=True):
        with bb.dataflow():
            ret = body(_Emitter(bb), *params)
        bb.emit_func_output(ret)
    return bb.get()["f"]


def conv_consts(cin, cout, k=1, depthwise=False, seed=0):
    """Weights, bias, per-channel multiplier and shift (deterministic values)."""
    rng = np.random.default_rng(seed)
    shape = (1, k, k, cout) if depthwise else (cout, k, k, cin)
    return [relax.const(rng.integers(-5, 5, shape).astype("int8")),
            relax.const(rng.integers(-9, 9, (cout,)).astype("int32")),
            relax.const(np.full((cout,), 1 << 30, "int32")),
            relax.const(np.full((cout,), -3, "int32"))]


def conv_attrs(h, w, cin, cout, k=1, stride=1, pad=0, depthwise=False, input_offset=128):
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    return dict(batch=1, input_h=h, input_w=w, input_c=cin, output_h=oh, output_w=ow, output_c=cout,
                kernel_h=k, kernel_w=k, stride_h=stride, stride_w=stride, dilation_h=1, dilation_w=1,
                pad_top=pad, pad_left=pad, depth_multiplier=1,
                input_offset=input_offset, output_offset=-128, act_min=-128, act_max=127)


def add_attrs(shape, in1_offset=128, in2_offset=-33):
    _, h, w, c = shape
    strides = [h * w * c, w * c, c, 1]
    return dict(dims=list(shape), input1_strides=strides, input2_strides=list(strides),
                input1_offset=in1_offset, input2_offset=in2_offset, output_offset=16, left_shift=20,
                input1_multiplier=1880696586, input1_shift=-2, input2_multiplier=1073741824, input2_shift=0,
                output_multiplier=1916991042, output_shift=-19, act_min=-128, act_max=127)


def branchy():
    """x -> (a1 -> a2), (b1 -> b2) -> add, written in the worst order (a1, b1, a2, b2)."""
    def body(e, x):
        a1 = e.call("a1", "te_conv2d_s8", [x] + conv_consts(1, 8, seed=1), conv_attrs(4, 4, 1, 8), [1, 4, 4, 8])
        b1 = e.call("b1", "te_conv2d_s8", [x] + conv_consts(1, 8, seed=2), conv_attrs(4, 4, 1, 8), [1, 4, 4, 8])
        a2 = e.call("a2", "te_conv2d_s8", [a1] + conv_consts(8, 1, seed=3), conv_attrs(4, 4, 8, 1), [1, 4, 4, 1])
        b2 = e.call("b2", "te_conv2d_s8", [b1] + conv_consts(8, 1, seed=4), conv_attrs(4, 4, 8, 1), [1, 4, 4, 1])
        return e.call("sum", "te_add_s8", [a2, b2], add_attrs([1, 4, 4, 1]), [1, 4, 4, 1], out=True)

    return make_func([("x", (1, 4, 4, 1))], body)


def plain_helper():
    """A function no memory pass applies to (no kernel calls)."""
    x = relax.Var("x", relax.TensorType([4], "float32"))
    bb = relax.BlockBuilder()
    with bb.function("helper", [x], private=True):
        with bb.dataflow():
            y = bb.emit_output(relax.op.add(x, x))
        bb.emit_func_output(y)
    return bb.get()["helper"]


def run(pass_, func):
    """The pass on a module of ``func`` as main: (new main without its reports, main's reports)."""
    out = pass_(tvm.IRModule({"main": func}))["main"]
    return without_reports(out), pass_reports(out)


# ----------------------------------------------------------------------------- before/expected, every pass


def test_fold_pad_into_conv():
    attrs = conv_attrs(6, 6, 1, 2, k=3)

    def before(e, x):
        p = e.call("padded", "te_pad_s8", [x], dict(input_dims=[1, 4, 4, 1], before=[0, 1, 1, 0],
                                                    after=[0, 1, 1, 0], pad_value=-128), [1, 6, 6, 1])
        return e.call("conv", "te_conv2d_s8", [p] + conv_consts(1, 2, 3), attrs, [1, 4, 4, 2], out=True)

    def expected(e, x):
        folded = dict(attrs, input_h=4, input_w=4, pad_top=1, pad_left=1)
        return e.call("conv", "te_conv2d_s8", [x] + conv_consts(1, 2, 3), folded, [1, 4, 4, 2], out=True)

    got, reports = run(FoldPadIntoConv(), make_func([("x", (1, 4, 4, 1))], before))
    tvm.ir.assert_structural_equal(got, make_func([("x", (1, 4, 4, 1))], expected))
    assert reports == [{"name": "FoldPadIntoConv", "folded": 1}]


def test_fold_pad_keeps_a_pad_of_another_value():
    def before(e, x):
        p = e.call("padded", "te_pad_s8", [x], dict(input_dims=[1, 4, 4, 1], before=[0, 1, 1, 0],
                                                    after=[0, 1, 1, 0], pad_value=0), [1, 6, 6, 1])
        return e.call("conv", "te_conv2d_s8", [p] + conv_consts(1, 2, 3), conv_attrs(6, 6, 1, 2, k=3),
                      [1, 4, 4, 2], out=True)

    func = make_func([("x", (1, 4, 4, 1))], before)
    got, reports = run(FoldPadIntoConv(), func)
    tvm.ir.assert_structural_equal(got, func)
    assert reports == [{"name": "FoldPadIntoConv", "folded": 0}]


def test_inplace_depthwise():
    dw = conv_attrs(4, 4, 2, 2, k=3, pad=1, depthwise=True)

    def body(kernel):
        def f(e, x):
            c = e.call("expand", "te_conv2d_s8", [x] + conv_consts(1, 2), conv_attrs(4, 4, 1, 2), [1, 4, 4, 2])
            return e.call("dw", kernel, [c] + conv_consts(2, 2, 3, depthwise=True), dw, [1, 4, 4, 2], out=True)
        return f

    got, reports = run(InplaceDepthwise(), make_func([("x", (1, 4, 4, 1))], body("te_depthwise_conv2d_s8")))
    tvm.ir.assert_structural_equal(got, make_func([("x", (1, 4, 4, 1))], body("te_depthwise_conv2d_inplace_s8")))
    assert reports == [{"name": "InplaceDepthwise", "inplace": 1}]


def test_inplace_depthwise_leaves_an_input_read_later():
    def body(e, x):
        c = e.call("expand", "te_conv2d_s8", [x] + conv_consts(1, 2), conv_attrs(4, 4, 1, 2), [1, 4, 4, 2])
        d = e.call("dw", "te_depthwise_conv2d_s8", [c] + conv_consts(2, 2, 3, depthwise=True),
                   conv_attrs(4, 4, 2, 2, k=3, pad=1, depthwise=True), [1, 4, 4, 2])
        return e.call("sum", "te_add_s8", [c, d], add_attrs([1, 4, 4, 2]), [1, 4, 4, 2], out=True)

    func = make_func([("x", (1, 4, 4, 1))], body)
    got, reports = run(InplaceDepthwise(), func)
    tvm.ir.assert_structural_equal(got, func)
    assert reports == [{"name": "InplaceDepthwise", "inplace": 0}]


def test_inplace_elementwise_swaps_operands_to_write_over_the_dying_one():
    """input1 is the model input (kept), input2 dies at the ADD: the operands and
    their quantization parameters swap so the output overwrites input 0."""
    shape = [1, 4, 4, 1]
    attrs = add_attrs(shape, in1_offset=128, in2_offset=-33)

    def before(e, x):
        b = e.call("b", "te_conv2d_s8", [x] + conv_consts(1, 1), conv_attrs(4, 4, 1, 1), shape)
        return e.call("sum", "te_add_s8", [x, b], attrs, shape, out=True)

    def expected(e, x):
        b = e.call("b", "te_conv2d_s8", [x] + conv_consts(1, 1), conv_attrs(4, 4, 1, 1), shape)
        swapped = dict(attrs, input1_offset=-33, input2_offset=128, input1_multiplier=1073741824, input1_shift=0,
                       input2_multiplier=1880696586, input2_shift=-2)
        return e.call("sum", "te_add_inplace_s8", [b, x], swapped, shape, out=True)

    got, reports = run(InplaceElementwise(), make_func([("x", shape)], before))
    tvm.ir.assert_structural_equal(got, make_func([("x", shape)], expected))
    assert reports == [{"name": "InplaceElementwise", "inplace": 1}]


def test_memory_aware_schedule_runs_one_branch_at_a_time():
    def expected(e, x):
        a1 = e.call("a1", "te_conv2d_s8", [x] + conv_consts(1, 8, seed=1), conv_attrs(4, 4, 1, 8), [1, 4, 4, 8])
        a2 = e.call("a2", "te_conv2d_s8", [a1] + conv_consts(8, 1, seed=3), conv_attrs(4, 4, 8, 1), [1, 4, 4, 1])
        b1 = e.call("b1", "te_conv2d_s8", [x] + conv_consts(1, 8, seed=2), conv_attrs(4, 4, 1, 8), [1, 4, 4, 8])
        b2 = e.call("b2", "te_conv2d_s8", [b1] + conv_consts(8, 1, seed=4), conv_attrs(4, 4, 8, 1), [1, 4, 4, 1])
        return e.call("sum", "te_add_s8", [a2, b2], add_attrs([1, 4, 4, 1]), [1, 4, 4, 1], out=True)

    got, reports = run(MemoryAwareSchedule(), branchy())
    tvm.ir.assert_structural_equal(got, make_func([("x", (1, 4, 4, 1))], expected))
    # x 16 B + a1 128 B + b1 128 B alive at b1, against x + a2 + b1 at best;
    # the DP visits the 10 downsets of the graph.
    assert reports == [{"name": "MemoryAwareSchedule", "peak_bytes": 160, "original_peak_bytes": 272,
                        "exact": True, "states": 10, "reordered": True}]


def test_patch_based_inference_splits_the_first_stage():
    """x 8x8x1 -> expand 1x1 to 8 channels -> project 1x1 to 1 -> head: the stage
    (expand, project) runs as a 2x2 grid of 4x4 patches pasted into its output."""
    expand, project, head = conv_attrs(8, 8, 1, 8), conv_attrs(8, 8, 8, 1), conv_attrs(8, 8, 1, 1)

    def tail(e, stage_out):
        return e.call("head", "te_conv2d_s8", [stage_out] + conv_consts(1, 1, seed=3), head, [1, 8, 8, 1], out=True)

    def before(e, x):
        a = e.call("expand", "te_conv2d_s8", [x] + conv_consts(1, 8, seed=1), expand, [1, 8, 8, 8])
        b = e.call("project", "te_conv2d_s8", [a] + conv_consts(8, 1, seed=2), project, [1, 8, 8, 1])
        return tail(e, b)

    def expected(e, x):
        # Every call of the patched stage notes the stage output it builds.
        of = dict(_patch_of="project")
        buf = e.call("project", "te_buffer", [], dict(of), [1, 8, 8, 1])
        local = dict(input_h=4, input_w=4, output_h=4, output_w=4, **of)
        for p, (y0, x0) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
            crop = e.call(f"x[window {p} of project]", "te_crop_s8", [x], dict(
                src_stride=8, row_bytes=4, rows=4, _in_offsets=[y0 * 8 + x0], **of), [1, 4, 4, 1])
            a = e.call(f"expand[patch {p}]", "te_conv2d_s8", [crop] + conv_consts(1, 8, seed=1),
                       dict(expand, **local), [1, 4, 4, 8])
            b = e.call(f"project[patch {p}]", "te_conv2d_s8", [a] + conv_consts(8, 1, seed=2),
                       dict(project, **local), [1, 4, 4, 1])
            buf = e.call(f"project[paste {p}]", "te_paste_s8", [buf, b], dict(
                row_bytes=4, rows=4, dst_stride=8, _inout_offset=y0 * 8 + x0, **of), [1, 8, 8, 1])
        return tail(e, buf)

    got, reports = run(PatchBasedInference(max_patches=2, halo_cache="off"), make_func([("x", (1, 8, 8, 1))], before))
    tvm.ir.assert_structural_equal(got, make_func([("x", (1, 8, 8, 1))], expected))
    (report,) = reports
    assert report["name"] == "PatchBasedInference" and report["applied"] and report["mac_overhead"] == 0
    (stage,) = report["stages"]
    assert stage["grid"] == [2, 2] and (stage["first_op"], stage["last_op"]) == ("expand", "project")
    assert (stage["first_index"], stage["last_index"], stage["extra_macs"]) == (0, 1, 0)
    assert report["arena_bytes"] < report["baseline_arena_bytes"]


# ----------------------------------------------------------------------------- what a pass keeps


@pytest.mark.parametrize("name", list(PASS_FACTORIES))
def test_pass_keeps_other_functions_and_module_attrs(name):
    mod = tvm.IRModule({"main": branchy(), "helper": plain_helper()}, attrs={"tinyengine.test_attr": "kept"})
    before_main = mod["main"]
    out = PASS_FACTORIES[name]()(mod)
    assert out["helper"].same_as(mod["helper"])
    assert str(out.attrs["tinyengine.test_attr"]) == "kept"
    assert [r["name"] for r in pass_reports(out["main"])] == [name]
    # The input module is not changed in place.
    assert mod["main"].same_as(before_main) and not pass_reports(mod["main"])
    assert {gv.name_hint for gv in out.get_global_vars()} == {"main", "helper"}


def test_every_lowered_function_is_rewritten_with_its_own_report():
    def with_pad(e, x):
        p = e.call("padded", "te_pad_s8", [x], dict(input_dims=[1, 4, 4, 1], before=[0, 1, 1, 0],
                                                    after=[0, 1, 1, 0], pad_value=-128), [1, 6, 6, 1])
        return e.call("conv", "te_conv2d_s8", [p] + conv_consts(1, 2, 3), conv_attrs(6, 6, 1, 2, k=3),
                      [1, 4, 4, 2], out=True)

    other = make_func([("x", (1, 4, 4, 1))], with_pad, attrs={})  # private: no global symbol
    mod = tvm.IRModule({"main": make_func([("x", (1, 4, 4, 1))], with_pad), "other": other})
    out = tvm.transform.Sequential([FoldPadIntoConv(), MemoryAwareSchedule()])(mod)
    for gv in ("main", "other"):
        reports = pass_reports(out[gv])
        assert [r["name"] for r in reports] == ["FoldPadIntoConv", "MemoryAwareSchedule"]
        assert reports[0]["folded"] == 1
        assert len(KernelGraph.from_relax(out[gv]).steps) == 1
    assert "global_symbol" not in out["other"].attrs and out["main"].attrs["global_symbol"] == "main"


def test_reports_accumulate_in_run_order():
    out = tvm.transform.Sequential(optimization_passes())(tvm.IRModule({"main": branchy()}))
    assert [r["name"] for r in pass_reports(out["main"])] == list(PASS_FACTORIES)
    assert REPORTS_ATTR == "tinyengine.pass_reports"


# ----------------------------------------------------------------------------- options through the PassContext


def test_tvm_refuses_unregistered_config_keys():
    """Why the options are attached by pipeline.pass_context: TVM 0.27 registers
    config keys only from C++.  If this starts passing, register them in TVM."""
    with pytest.raises(Exception, match="Invalid config option"):
        tvm.transform.PassContext(config={"tinyengine.MemoryAwareSchedule.max_states": 1})


def test_pass_context_config_changes_a_pass_option():
    mod = tvm.IRModule({"main": branchy()})
    exact = lambda m: pass_reports(m["main"])[-1]["exact"]  # noqa: E731
    assert exact(MemoryAwareSchedule()(mod))
    with pass_context({"tinyengine.MemoryAwareSchedule.max_states": 1}):
        assert not exact(MemoryAwareSchedule()(mod))  # a beam of one: heuristic
        # The constructor argument overrides the context.
        assert exact(MemoryAwareSchedule(max_states=100)(mod))
        # A nested plain PassContext is a new context, as for TVM's own keys.
        with tvm.transform.PassContext():
            assert exact(MemoryAwareSchedule()(mod))
    assert exact(MemoryAwareSchedule()(mod))
    # The short form (as in --pass-config), added to the current context.
    with attach_options({"MemoryAwareSchedule.max_states": 1}):
        assert not exact(tvm.transform.Sequential([MemoryAwareSchedule()])(mod))


def test_pass_context_keeps_tvm_keys_and_settings():
    with pass_context({"MemoryAwareSchedule.max_states": 5, "relax.FuseOps.max_depth": 3},
                      disabled_pass=["MemoryAwareSchedule"]) as ctx:
        assert int(ctx.config["relax.FuseOps.max_depth"]) == 3
        out = tvm.transform.Sequential([MemoryAwareSchedule()])(tvm.IRModule({"main": branchy()}))
        assert not pass_reports(out["main"])  # disabled by name, TVM's way


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError, match="max_states=0: must be an integer"):
        with pass_context({"MemoryAwareSchedule.max_states": 0}):
            pass
    with pytest.raises(UsageError, match="has no option 'nope'"):
        with attach_options({"tinyengine.PatchBasedInference.nope": 1}):
            pass
    with pytest.raises(UsageError, match="max_mac_overhead=-1: must be a number"):
        PatchBasedInference(max_mac_overhead=-1)
    configs = list_configs()
    assert configs["tinyengine.PatchBasedInference.max_mac_overhead"] == {"type": "float", "default": 0.1}
    assert configs["tinyengine.PatchBasedInference.split"] == {"type": "int", "default": None}


# ----------------------------------------------------------------------------- the shared cost model


def test_schedule_and_planner_share_the_cost_model():
    for func in (branchy(), MemoryAwareSchedule()(tvm.IRModule({"main": branchy()}))["main"]):
        graph = KernelGraph.from_relax(func)
        model, plan = CostModel(graph), plan_arena(graph, kernel_scratch(graph))
        done = 0
        for s in range(len(graph.steps)):
            assert model.step_bytes(done, s) == plan.live_bytes(s)
            done |= 1 << s
        assert search_schedule(graph).original_peak == model.peak() == plan.live_peak
