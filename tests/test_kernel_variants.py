"""Per-layer kernel variants (``compile(kernel_variants=...)``, what ``tvmc tune``
searches): each variant calls the kernel it names on every step of its layer
(patches included), the others keep theirs, the outputs stay bit-exact with
TFLM, and a layer or variant that does not apply is a clear error."""
from collections import defaultdict

import pytest

import tinyengine_tvm as te
from tinyengine_tvm.codegen.kernel_selection import layer_name, layer_variants
from tinyengine_tvm.errors import UsageError
from tinyengine_tvm.modelgen import zoo
from tinyengine_tvm.testing import assert_matches_tflm, random_inputs

CORE = "cortex-m7"


@pytest.fixture(scope="module")
def model():
    # An MCUNet-style network: a patch-based first stage, 3x3/5x5/7x7 depthwise
    # layers with specialized kernels, pointwise convolutions of small and large filters.
    return zoo.mcunet_vww(resolution=48, width=0.5, seed=3)


def _kernels_by_layer(compiled):
    """{layer: kernels of its steps that have a choice} (a patch stage's buffer, crops and
    pastes belong to the layer too, but keep their kernels whatever the variant)."""
    out = defaultdict(set)
    for s in compiled.graph.steps:
        if s.notes.get("portable_kernel") or s.kernel.startswith(("te_conv2d", "te_depthwise")):
            out[layer_name(s.name)].add(s.kernel)
    return out


def test_each_variant_calls_its_kernel_on_every_step_of_its_layer(model, tflm):
    default = te.compile(model, core=CORE)
    choices = layer_variants(default.graph, CORE)
    kernels = _kernels_by_layer(default)
    narrow = [n for n, v in choices.items() if "w16" in v and kernels[n] == {"te_arm_conv2d_s8"}]
    wide = [n for n, v in choices.items() if "w8" in v and kernels[n] == {"te_arm_conv2d_w16_s8"}]
    dw = [n for n, v in choices.items() if "generic" in v]
    patched = {layer_name(s.name) for s in default.graph.steps if "[patch" in s.name}
    assert narrow and wide and dw and patched & set(wide), "the model must exercise every variant"
    in_patches = sorted(patched & set(wide))[0]
    variants = {narrow[0]: "w16", in_patches: "w8", dw[0]: "generic", dw[1]: "portable"}
    tuned = te.compile(model, core=CORE, kernel_variants=variants)
    got = _kernels_by_layer(tuned)
    assert got[narrow[0]] == {"te_arm_conv2d_w16_s8"}
    assert got[in_patches] == {"te_arm_conv2d_s8"}  # every patch of the layer
    assert all(k.startswith("te_arm_depthwise_conv2d") and "x" not in k.split("conv2d")[1] for k in got[dw[0]]), \
        got[dw[0]]
    assert all(not k.startswith("te_arm_") for k in got[dw[1]])
    for layer, ks in kernels.items():  # nothing else moved
        if layer not in variants:
            assert got[layer] == ks, layer
    assert tuned.metadata["kernel_selection"]["variants"] == dict(sorted(variants.items()))
    # An int16 filter takes twice the bytes of an int8 one: the flash that variant trades.
    assert tuned.metadata["memory"]["weights_bytes"] != default.metadata["memory"]["weights_bytes"]
    cases = [random_inputs(tuned.metadata["inputs"], s) for s in (1, 2)]
    assert_matches_tflm(tuned, model, cases)


def test_variants_that_do_not_apply_are_refused(model):
    default = te.compile(model, core=CORE)
    choices = layer_variants(default.graph, CORE)
    conv = next(n for n, v in choices.items() if "w16" in v)
    with pytest.raises(UsageError, match="no such layer"):
        te.compile(model, core=CORE, kernel_variants={"not/a/layer": "w16"})
    with pytest.raises(UsageError, match="one of dsp, portable"):
        te.compile(model, core=CORE, kernel_variants={conv: "fastest"})
    with pytest.raises(UsageError, match="does not apply"):
        te.compile(model, core=CORE, kernel_variants={conv: "generic"})
    with pytest.raises(UsageError, match="give a core"):
        te.compile(model, kernel_variants={conv: "w16"})


def test_layer_name_strips_the_compilers_suffixes():
    assert layer_name("model/conv1/Relu[patch 3]") == "model/conv1/Relu"
    assert layer_name("stem[scratch][patch 0]") == "stem"
    assert layer_name("plain") == "plain"
