"""SliceViews: slices that select one contiguous byte range of their input are views.

* which slices are contiguous is checked against numpy on random slices;
* SLICE, STRIDED_SLICE, SPLIT, SPLIT_V and UNPACK along the outermost non-unit
  axis lose their kernel call (in the kernel graph and in the generated C),
  stay bit-exact with TFLM, and the arena is never larger than with copies;
* a model output that would alias a model input or another output keeps its copy;
* an in-place kernel never writes over a buffer a live view still reads, and a
  copy an in-place kernel writes over stays a copy;
* a view that would keep a large input alive longer stays a copy.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyengine_tvm as te
from tinyengine_tvm.slice_view import contiguous_offset
from tinyengine_tvm.testing import assert_matches_tflm, random_inputs
from tinyengine_tvm.testing.plan_check import check_plan_valid

pytest.importorskip("tflite_micro", reason="tflite-micro is not installed (pip install --pre tflite-micro)")
from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph  # noqa: E402

SLICE_KERNELS = ("te_strided_slice_s8", "te_strided_slice_s16")
COPIES = dict(disabled_passes=["SliceViews"])


@st.composite
def _slices(draw):
    rank = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 4)) for _ in range(rank)]
    begin, size = [], []
    for n in shape:
        b = draw(st.integers(0, n - 1))
        begin.append(b)
        size.append(draw(st.integers(1, n - b)))
    return shape, begin, size


@settings(max_examples=300, deadline=None)
@given(_slices())
def test_contiguous_offset_agrees_with_numpy(case):
    shape, begin, size = case
    flat = np.arange(int(np.prod(shape))).reshape(shape)
    picked = flat[tuple(slice(b, b + z) for b, z in zip(begin, size))].ravel()
    contiguous = bool(np.all(np.diff(picked) == 1))
    offset = contiguous_offset(shape, begin, [1] * len(shape), size)
    assert (offset is not None) == contiguous
    if offset is not None:
        assert offset == picked[0]


def test_strided_or_broadcast_slices_are_not_views():
    assert contiguous_offset([1, 6, 4], [0, 0, 0], [1, 2, 1], [1, 3, 4]) is None
    assert contiguous_offset([1, 1, 4], [0, 0, 0], [1, 0, 1], [1, 3, 4]) is None
    assert contiguous_offset([1, 6, 4], [0, 5, 0], [1, -1, 1], [1, 2, 4]) is None
    # A stride on an axis taking one element does not matter.
    assert contiguous_offset([3, 6, 4], [2, 1, 0], [5, 1, 1], [1, 2, 4]) == 2 * 24 + 4


def _source(c) -> str:
    return c.files[f"src/{c.name}.c"]


def _check(model, views, smaller=False, **options):
    """Copies and views give the same bytes as TFLM; the views' plan is valid and no larger
    (unless ``options`` force the views)."""
    copies, viewed = te.compile(model, **COPIES), te.compile(model, **options)
    cases = [random_inputs(viewed.metadata["inputs"], s) for s in range(3)]
    for c in (copies, viewed):
        check_plan_valid(c)
        assert_matches_tflm(c, model, cases)
    report = {r["name"]: r for r in viewed.metadata["passes"]}["SliceViews"]
    assert report["views"] == views
    left = [s for s in viewed.graph.steps if s.kernel in SLICE_KERNELS]
    assert len(left) == len([s for s in copies.graph.steps if s.kernel in SLICE_KERNELS]) - views
    if not left:
        assert "te_strided_slice" not in _source(viewed)
    a, b = viewed.metadata["memory"]["arena_bytes"], copies.metadata["memory"]["arena_bytes"]
    if not options:
        assert a < b if smaller else a <= b
    return copies, viewed


def _heads(g, parts, channels=4):
    return [g.conv2d(p, channels, (1, 1), prefix=f"head{k}") for k, p in enumerate(parts)]


def _split_model(kind, dtype="int8"):
    g = QuantizedGraph(11)
    x = g.input((1, 8, 6, 3), dtype=dtype)
    y = g.conv2d(x, 16, (3, 3), padding="SAME", activation="RELU")
    if kind == "split":
        parts = g.split(y, 2, axis=1)
    elif kind == "split_v":
        parts = g.split_v(y, [3, 1, 4], axis=1)
    elif kind == "unpack":
        parts = [g.reshape(p, (1, 6, 1, 16)) for p in g.unpack(g.reshape(y, (8, 6, 16)), axis=0)][:3]
    elif kind == "slice":
        parts = [g.slice(y, [0, 2, 0, 0], [1, 3, -1, -1]), g.slice(y, [0, 6, 1, 0], [1, 1, 4, 16])]
    else:  # strided_slice, unit strides, a begin mask and a shrunk axis
        parts = [g.strided_slice(y, [0, 1, 0, 0], [1, 5, 6, 16], [1, 1, 1, 1], begin_mask=0b1000),
                 g.reshape(g.strided_slice(y, [0, 7, 0, 0], [1, 8, 6, 16], [1, 1, 1, 1], shrink_axis_mask=0b10),
                           (1, 1, 6, 16))]
    return g.finish(_heads(g, parts)), len(parts)


@pytest.mark.parametrize("kind", ["split", "split_v", "unpack", "slice", "strided_slice"])
def test_outer_slices_are_views(kind):
    model, parts = _split_model(kind)
    _check(model, parts, smaller=True)


def test_int16_split_is_a_view():
    model, parts = _split_model("split", dtype="int16")
    copies, viewed = _check(model, parts, smaller=True)
    # The consumers read the convolution's buffer at the parts' byte offsets.
    conv = viewed.graph.steps[0].output
    heads = viewed.graph.steps[1:]
    assert [viewed.graph.root(s.inputs[0]) for s in heads] == [conv] * parts
    assert [viewed.graph.offset(s.inputs[0]) for s in heads] == [0, 4 * 6 * 16 * 2]


def test_channel_and_strided_slices_stay_copies():
    g = QuantizedGraph(2)
    x = g.input((1, 6, 6, 3))
    y = g.conv2d(x, 8, (3, 3), padding="SAME")
    parts = [g.slice(y, [0, 0, 0, 2], [1, 6, 6, 4]),  # channels: one run per pixel
             g.strided_slice(y, [0, 0, 0, 0], [1, 6, 6, 8], [1, 2, 1, 1]),  # every other row
             g.slice(y, [0, 1, 2, 0], [1, 2, 3, 8])]  # a rectangle of rows
    _check(g.finish(_heads(g, parts)), 0)


def test_output_views_of_inputs_and_outputs_keep_their_copy():
    g = QuantizedGraph(4)
    x = g.input((1, 4, 3, 2))
    y = g.conv2d(x, 5, (1, 1))
    outs = [g.slice(x, [0, 1, 0, 0], [1, 2, 3, 2]),  # of the model input
            y, g.slice(y, [0, 2, 0, 0], [1, 2, 3, 5]),  # of another output
            g.slice(g.conv2d(x, 4, (1, 1), prefix="z"), [0, 3, 0, 0], [1, 1, 3, 4])]  # of an intermediate
    model = g.finish(outs)
    _check(model, 0)  # the view of the intermediate is refused too: it would hold all of it to the end
    copies, viewed = _check(model, 1, pass_config={"SliceViews.only_if_smaller": False})
    report = {r["name"]: r for r in viewed.metadata["passes"]}["SliceViews"]
    assert report["copies_for_outputs"] == 2
    # The caller's output pointers: the view's points into its source, past the rows it skips.
    graph, plan = viewed.graph, viewed.plan
    last = graph.outputs[3]
    assert graph.offset(last) == 3 * 3 * 4
    assert f"case 3: return model_arena + {plan.offset_of(graph.root(last)) + 36};" in _source(viewed)


def _view_into_inplace_model():
    """Row halves of one tensor: the first feeds a depthwise convolution and an ADD,
    the second is read after both; in-place kernels could only write over the view."""
    g = QuantizedGraph(6)
    x = g.input((1, 8, 8, 4))
    y = g.conv2d(x, 8, (3, 3), padding="SAME", activation="RELU")
    top, bottom = g.split(y, 2, axis=1)
    d = g.depthwise_conv2d(top, (3, 3), (1, 1), padding="SAME")
    s = g.add(top, g.conv2d(d, 8, (1, 1), prefix="pw"))
    late = g.conv2d(bottom, 8, (1, 1), prefix="late")
    return g.finish([g.add(s, late, prefix="join")])


def test_inplace_kernels_never_write_over_a_live_view():
    model = _view_into_inplace_model()
    forced = {"InplaceDepthwise.only_if_smaller": False, "InplaceElementwise.only_if_smaller": False}
    c = te.compile(model, pass_config=forced, disabled_passes=["PatchBasedInference"])
    check_plan_valid(c)
    assert_matches_tflm(c, model, [random_inputs(c.metadata["inputs"], s) for s in range(3)])
    graph, plan = c.graph, c.plan
    conv = graph.steps[0].output
    dw = [s for s in graph.steps if "depthwise" in s.kernel]
    assert [s.kernel for s in dw] == ["te_depthwise_conv2d_s8"]  # not in place over the view
    assert graph.root(dw[0].inputs[0]) == conv
    adds = [s for s in graph.steps if s.kernel.startswith("te_add")]
    # The first ADD may write over its other operand, never over the view or its source.
    assert all(graph.root(s.output) != conv for s in adds)
    assert any(s.kernel == "te_add_inplace_s8" for s in adds)
    # The source stays in the arena until the last reader of its second half.
    late = next(k for k, s in enumerate(graph.steps) if s.name.startswith("late"))
    assert plan.buffers[conv].last >= late
    assert not any(s.kernel in SLICE_KERNELS for s in graph.steps)


def test_a_copy_an_inplace_kernel_writes_over_stays_a_copy():
    """The upper rows' only reader is a depthwise convolution run in place over them:
    as a view, it would write over the tensor a later convolution reads whole."""
    g = QuantizedGraph(7)
    x = g.input((1, 8, 8, 4))
    y = g.conv2d(x, 8, (3, 3), padding="SAME", activation="RELU")
    top = g.slice(y, [0, 0, 0, 0], [1, 4, 8, 8])
    d = g.depthwise_conv2d(top, (3, 3), (1, 1), padding="SAME")
    pw = g.conv2d(d, 8, (1, 1), prefix="pw")
    model = g.finish([pw, g.conv2d(y, 8, (3, 3), padding="SAME", prefix="late")])
    forced = {"InplaceDepthwise.only_if_smaller": False, "SliceViews.only_if_smaller": False}
    c = te.compile(model, pass_config=forced, disabled_passes=["PatchBasedInference"])
    check_plan_valid(c)
    assert_matches_tflm(c, model, [random_inputs(c.metadata["inputs"], s) for s in range(3)])
    graph = c.graph
    conv = graph.steps[0].output
    dw = next(s for s in graph.steps if "depthwise" in s.kernel)
    assert dw.kernel == "te_depthwise_conv2d_inplace_s8"
    assert graph.root(dw.output) != conv  # over the upper half's own copy
    assert [s.kernel for s in graph.steps].count("te_strided_slice_s8") == 1
    assert {r["name"]: r for r in c.metadata["passes"]}["SliceViews"]["views"] == 0


def _late_small_slice_model():
    """A one-row slice read at the very end, of a tensor the wide layers start from:
    as a view it would keep its whole source alive across them (in any order)."""
    g = QuantizedGraph(8)
    x = g.input((1, 12, 12, 2))
    y = g.conv2d(x, 16, (3, 3), padding="SAME", prefix="src")
    row = g.slice(y, [0, 0, 0, 0], [1, 1, 12, 16])
    wide = g.conv2d(g.conv2d(y, 32, (1, 1), prefix="w1"), 32, (1, 1), prefix="w2")
    summary = g.conv2d(wide, 16, (12, 1), padding="VALID", prefix="summary")
    return g.finish(g.sub(row, summary))  # SUB: no in-place form, which would keep the copy anyway


def test_view_that_grows_the_arena_stays_a_copy():
    model = _late_small_slice_model()
    arena, cases = {}, None
    for label, config in (("copies", None), ("checked", {}), ("forced", {"SliceViews.only_if_smaller": False})):
        disabled = ["PatchBasedInference"] + (["SliceViews"] if config is None else [])
        c = te.compile(model, disabled_passes=disabled, pass_config=config)
        check_plan_valid(c)
        cases = cases or [random_inputs(c.metadata["inputs"], s) for s in range(2)]
        assert_matches_tflm(c, model, cases)
        arena[label] = c.metadata["memory"]["arena_bytes"]
        views = {r["name"]: r for r in c.metadata["passes"]}.get("SliceViews", {}).get("views", 0)
        assert views == (label == "forced")
    assert arena["checked"] == arena["copies"] < arena["forced"]


def test_patch_stage_reads_its_source_through_a_view():
    """The lower half of a split is a patch stage's source: its windows are cut at the
    view's offset plus the window's (views forced: the pass keeps copies wherever
    views would not lower the patched plan)."""
    g = QuantizedGraph(9)
    x = g.input((1, 16, 12, 3))
    y = g.conv2d(x, 8, (3, 3), padding="SAME", activation="RELU", prefix="stem")
    top, bottom = g.split(y, 2, axis=1)
    outs = []
    for k, part in enumerate((top, bottom)):
        z = g.conv2d(part, 24, (3, 3), padding="SAME", activation="RELU", prefix=f"wide{k}")
        z = g.conv2d(z, 4, (3, 3), (2, 2), padding="SAME", prefix=f"down{k}")
        outs.append(g.mean(z, (1, 2), prefix=f"mean{k}"))
    model = g.finish(outs)
    c = te.compile(model, pass_config={"PatchBasedInference.max_mac_overhead": 1.0,
                                       "SliceViews.only_if_smaller": False})
    check_plan_valid(c)
    assert {p["name"]: p for p in c.metadata["passes"]}["PatchBasedInference"]["applied"]
    assert_matches_tflm(c, model, [random_inputs(c.metadata["inputs"], s) for s in range(3)])
    graph = c.graph
    crops = [s for s in graph.steps if s.kernel == "te_crop_s8" and graph.tensors[s.inputs[0]].view_of is not None]
    assert any(graph.offset(s.inputs[0]) > 0 for s in crops), "no patch window read through the lower half"
    assert not any(s.kernel in SLICE_KERNELS for s in graph.steps)
