"""The compiled training step (tinyengine_tvm.training.compile_training), end to end on the host.

Models come from the project's TFLite writer: conv 3x3 -> ReLU -> depthwise
3x3 (stride 2) -> ReLU -> conv 1x1 -> ReLU -> MEAN -> FC -> SOFTMAX on 8x8x1.
For three configurations, (a) every bias, (b) the last FC's weights and every
bias, (c) the last two layers' weights with a channel ratio of 1/2, one
``train_step`` of the generated C (debug build: every step's output traced)
is compared with a float64 NumPy reference built from
``training/reference.py`` and from the model file's own weights and scales
(read here with the ``tflite`` package, not through the compiler):

* the loss and every gradient the step produced: ``rtol=1e-4`` plus an
  absolute ``1e-5 * max|reference|`` (float32 sums of at most a few hundred
  terms against float64: ~1e-6 relative; a wrong index, scale or mask moves
  a value by a whole term);
* the updated int8 weights and int32 biases: equal, except that an element
  may differ by 1 where the float64 increment ``-lr * g / s^2`` lies within
  1e-3 of a rounding tie (x.5), since the C rounds a float32 increment;
  channels a ratio leaves frozen must not move at all.

The forward activations the reference starts from are the C's own (traced);
that they are the deployed inference is checked separately (the forward
trace equals ``tinyengine_tvm.compile(model).run``).  Also checked: pruning
(no weight-gradient step for frozen weights, no gradient below the lowest
trained layer), trainable parameters in SRAM and frozen weights const,
warning-free builds (host gcc in the runner; arm-none-eabi-gcc here), the
arena of (a) several times smaller than a full update's, loss falling over
several steps on a separable toy problem, momentum, and configuration errors.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm.errors import UsageError
from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph, choose_qparams
from tinyengine_tvm.training import TrainingConfig, compile_training, load_config
from tinyengine_tvm.training import reference as ref

LAYERS = ("conv1", "dw", "pw", "fc")


def small_cnn(c1=4, c2=8, classes=3, stride1=1, seed=0, logits_range=None, dw_stride=2) -> bytes:
    """conv 3x3 -> ReLU -> depthwise 3x3 /2 -> ReLU -> conv 1x1 -> ReLU -> MEAN -> FC -> SOFTMAX.
    ``logits_range`` (lo, hi) fixes the logits' quantization (else calibrated on random inputs)."""
    g = QuantizedGraph(seed=seed, samples=16)
    x = g.input((1, 8, 8, 1))
    x = g.conv2d(x, c1, (3, 3), (stride1, stride1), (1, 1), "SAME", "RELU", True, prefix="conv1")
    x = g.depthwise_conv2d(x, (3, 3), (dw_stride, dw_stride), (1, 1), "SAME", 1, "RELU", True, prefix="dw")
    x = g.conv2d(x, c2, (1, 1), (1, 1), (1, 1), "SAME", "RELU", True, prefix="pw")
    x = g.mean(x, (1, 2), keep_dims=False, prefix="mean")
    qparams = None if logits_range is None else choose_qparams(*logits_range)
    x = g.fully_connected(x, classes, "NONE", prefix="fc", qparams=qparams)
    x = g.softmax(x, prefix="softmax")
    return g.finish([x])


# --------------------------------------------------------------------------- the model file, read independently
def read_model(data: bytes):
    """{op output name: dict(op, input/output names and quantization, weights, bias, options)} in op order,
    read with the tflite package."""
    import tflite

    model = tflite.Model.GetRootAsModel(data, 0)
    sg = model.Subgraphs(0)
    codes = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def quant(i):
        q = sg.Tensors(i).Quantization()
        return q.ScaleAsNumpy().astype(np.float64), q.ZeroPointAsNumpy().astype(np.int64)

    def data_of(i, dtype):
        t = sg.Tensors(i)
        return model.Buffers(t.Buffer()).DataAsNumpy().view(dtype).reshape(t.ShapeAsNumpy())

    ops = []
    for k in range(sg.OperatorsLength()):
        op = sg.Operators(k)
        oc = model.OperatorCodes(op.OpcodeIndex())
        kind = codes[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]
        ins, out = list(op.InputsAsNumpy()), int(op.OutputsAsNumpy()[0])
        entry = dict(op=kind, name=sg.Tensors(out).Name().decode(), input=sg.Tensors(int(ins[0])).Name().decode(),
                     in_q=quant(int(ins[0])), out_q=quant(out), out_shape=list(sg.Tensors(out).ShapeAsNumpy()))
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            entry["w"] = data_of(int(ins[1]), np.int8)
            entry["w_scale"] = quant(int(ins[1]))[0]
            entry["b"] = data_of(int(ins[2]), np.int32)
        ops.append(entry)
    return ops


def same_pads(size, k, s):
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2


# --------------------------------------------------------------------------- float64 reference of one step
def forward_activations(compiled, trace, ops):
    """{model tensor name: its int8 value after the forward pass}, from the trace: the step of that
    name, or the last paste of a stage computed patch by patch; None where no step holds the whole
    tensor (inside patch-based stages, which only a frozen prefix keeps)."""
    steps = compiled.metadata["training"]["steps"][:compiled.metadata["training"]["forward_steps"]]
    out = {}
    for o in ops:
        whole = [s["name"] for s in steps if s["name"] == o["name"] and s["kernel"] != "te_buffer"]
        pasted = [s["name"] for s in steps if s["name"].startswith(o["name"] + "[paste")]
        found = whole or pasted
        out[o["name"]] = trace[found[-1]].reshape(o["out_shape"]) if found else None
    return out


def reference_step(ops, act, x, label, cfg: TrainingConfig):
    """{traced step name: expected value} for every gradient and update the reference computes, from
    the int8 forward activations ``act`` (by tensor name) and the model file's weights and scales."""
    layers = {o["name"]: o for o in ops if "w" in o}
    by_prefix = {name.split("_")[0]: name for name in layers}
    fc, pw, dw, conv1 = (layers[by_prefix[p]] for p in ("fc", "pw", "dw", "conv1"))
    mean = next(o for o in ops if o["op"] == "MEAN")
    act = dict(act, **{ops[0]["input"]: x})
    exp = {}
    s_fc = fc["w_scale"] if fc["w_scale"].size > 1 else np.repeat(fc["w_scale"], fc["w"].shape[0])
    loss, dz = ref.softmax_cross_entropy(act[fc["name"]].reshape(1, -1), fc["out_q"][0][0], int(fc["out_q"][1][0]),
                                         np.array([label]))
    exp["loss"] = loss
    exp["softmax_cross_entropy"] = dz

    def masked(layer, dy, kind):
        lo, hi = ref.activation_range(kind, layer["out_q"][0][0], int(layer["out_q"][1][0]))
        out = ref.activation_grad(act[layer["name"]], dy.reshape(act[layer["name"]].shape), lo, hi)
        exp[f"{layer['name']}.activation_grad"] = out
        return out

    def update(layer, gw, gb, scales, inner, trained_channels=None):
        lr = cfg.learning_rate
        s_in = layer["in_q"][0][0]
        if gw is not None:
            n = trained_channels or scales.size
            w = layer["w"]
            if layer["op"] == "DEPTHWISE_CONV_2D":
                new, _ = ref.qas_sgd(w, gw, scales, lr, 1)
            else:
                new = w.copy()
                part, _ = ref.qas_sgd(w[:n], gw[:n], scales[:n], lr, inner)
                new[:n] = part
            exp[f"{layer['name']}.weight.update"] = (new, w, gw, scales, None, inner)
        if gb is not None:
            new, _ = ref.qas_sgd(layer["b"], gb, scales, lr, 1, input_scale=s_in)
            exp[f"{layer['name']}.bias.update"] = (new, layer["b"], gb, scales, s_in, 1)

    # FC (no fused activation: the mask is int8 saturation)
    dy = masked(fc, dz, "none")
    x_fc = act[mean["name"]].reshape(1, -1)
    exp[f"{fc['name']}.grad_input"] = ref.fully_connected_grad_input(dy, fc["w"], s_fc)
    gw, gb = ref.fully_connected_grad_weights(dy, x_fc, fc["in_q"][0][0], int(fc["in_q"][1][0]), s_fc)
    exp[f"{fc['name']}.grad_weight"] = gw
    exp[f"{fc['name']}.grad_bias"] = gb
    ratios = dict(cfg.channel_ratio)
    n_fc = max(1, int(ratios.get(-1, 1.0) * s_fc.size))
    update(fc, gw, gb, s_fc, fc["w"].shape[1], n_fc)
    # MEAN over H, W
    pw_out = act[pw["name"]]
    reduced = pw_out.shape[1] * pw_out.shape[2]
    d_mean = ref.mean_grad(exp[f"{fc['name']}.grad_input"], reduced).reshape(pw_out.shape)
    exp[f"{mean['name']}.grad_input"] = d_mean
    # convolutions, top down: (layer, its int8 input, depthwise, the gradient of its output)
    d_out = d_mean
    for layer, prev, depthwise in ((pw, act[dw["name"]], False), (dw, act[conv1["name"]], True),
                                   (conv1, x, False)):
        if prev is None:  # a patch-based stage: frozen, below every trained layer
            break
        dy = masked(layer, d_out, "relu")
        w, sw = layer["w"], layer["w_scale"]
        k = w.shape[1:3]
        stride = tuple(prev.shape[a] // act[layer["name"]].shape[a] for a in (1, 2))  # SAME: in = stride * out
        pad = (same_pads(prev.shape[1], k[0], stride[0]), same_pads(prev.shape[2], k[1], stride[1]))
        s_in, zp_in = layer["in_q"][0][0], int(layer["in_q"][1][0])
        if depthwise:
            gx = ref.depthwise_conv2d_grad_input(dy, w, sw, prev.shape, stride, pad, (1, 1))
            gw, gb = ref.depthwise_conv2d_grad_weights(dy, prev, s_in, zp_in, sw, k, stride, pad, (1, 1))
            inner = 1
        else:
            gx = ref.conv2d_grad_input(dy, w, sw, prev.shape, stride, pad, (1, 1))
            gw, gb = ref.conv2d_grad_weights(dy, prev, s_in, zp_in, sw, k, stride, pad, (1, 1))
            inner = int(np.prod(w.shape[1:]))
        exp[f"{layer['name']}.grad_input"] = gx
        exp[f"{layer['name']}.grad_weight"] = gw
        exp[f"{layer['name']}.grad_bias"] = gb
        n = max(1, int(ratios.get(-2, 1.0) * sw.size)) if layer is pw else sw.size
        update(layer, gw, gb, sw, inner, n)
        d_out = gx
    return exp


def assert_update(got, expected, lr, name):
    """QAS update: exact, or off by one where the float64 increment is within 1e-3 of a tie."""
    new, old, grad, scales, input_scale, inner = expected
    got = np.asarray(got).reshape(new.shape)
    diff = got.astype(np.int64) - new.astype(np.int64)
    if not diff.any():
        return
    s = np.asarray(scales, np.float64) * (1.0 if input_scale is None else input_scale)
    channels = s.size
    shape = (old.size // (channels * inner), channels, inner)
    if name.endswith("weight.update") and old.ndim == 4 and old.shape[0] == 1:  # depthwise [1, kh, kw, C]
        shape = (old.size // channels, channels, 1)
    g = np.zeros(old.size)
    g[:np.asarray(grad).size] = np.asarray(grad, np.float64).reshape(-1)
    delta = (-lr * g.reshape(shape) / (s ** 2)[None, :, None]).reshape(-1)
    near_tie = np.abs(np.abs(delta - np.trunc(delta)) - 0.5) < 1e-3
    bad = (np.abs(diff.reshape(-1)) > 1) | ((diff.reshape(-1) != 0) & ~near_tie)
    assert not bad.any(), f"{name}: {bad.sum()} elements differ beyond a rounding tie: got {got.reshape(-1)[bad]}, " \
                          f"want {new.reshape(-1)[bad]}"


def check_one_step(data: bytes, cfg: TrainingConfig, seed=0):
    """Compile, run one traced train_step and compare every non-forward step with the reference."""
    compiled = compile_training(data, cfg, name="cnn")
    host = compiled.host(debug=True)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(1, 8, 8, 1), dtype=np.int8)
    label = int(rng.integers(0, 3))
    loss = host.train_step(x, label)
    trace = host.trace
    ops = read_model(data)
    exp = reference_step(ops, forward_activations(compiled, trace, ops), x, label, cfg)
    assert loss == pytest.approx(exp["loss"], rel=1e-5)
    meta = compiled.metadata["training"]
    checked = []
    for step in meta["steps"]:
        name = step["name"]
        if step["phase"] == "forward" or step["kernel"] == "te_buffer":
            continue
        assert name in exp, f"step {name} has no reference"
        got = trace[name]
        if step["phase"] == "update":
            assert_update(got, exp[name], cfg.learning_rate, name)
            # the update lands in the parameter the next invoke reads
            k = [p["name"] for p in meta["parameters"]].index(name[:-len(".update")])
            np.testing.assert_array_equal(host.parameter(k), got.reshape(meta["parameters"][k]["shape"]))
        else:
            want = np.asarray(exp[name], np.float64)
            if want.size != got.size:  # a channel ratio's FC weight gradient: the first n rows
                want = want.reshape(-1, got.shape[-1])[:got.shape[0]]
            want = want.reshape(got.shape)
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * max(np.abs(want).max(), 1e-30),
                                       err_msg=name)
        checked.append(name)
    return compiled, host, checked, x, label


def step_names(compiled, phase=None):
    return [s["name"] for s in compiled.metadata["training"]["steps"] if phase is None or s["phase"] == phase]


@pytest.fixture(scope="module")
def cnn():
    return small_cnn()


# --------------------------------------------------------------------------- (a), (b), (c) against the reference
def test_biases_only_matches_reference(cnn):
    cfg = TrainingConfig(biases="all", learning_rate=0.5)
    compiled, host, checked, x, _ = check_one_step(cnn, cfg)
    names = step_names(compiled)
    assert not any(n.endswith(".grad_weight") or n.endswith(".weight.update") for n in names)
    assert sum(n.endswith(".bias.update") for n in names) == 4
    # lowest trained layer is the first conv: no gradient of the model input
    conv1 = compiled.metadata["training"]["layers"][0]["name"]
    assert f"{conv1}.grad_input" not in names
    # the checked set: every gradient step and every update
    assert len(checked) == len(step_names(compiled, "backward")) + len(step_names(compiled, "update")) + 1


def test_fc_weights_and_biases_match_reference(cnn):
    cfg = TrainingConfig(biases="all", weights=[-1], learning_rate=0.5)
    compiled, host, checked, x, label = check_one_step(cnn, cfg, seed=1)
    names = step_names(compiled)
    fc = compiled.metadata["training"]["layers"][-1]["name"]
    # the FC's weights: gradient and update fused, one filter row of gradient in the arena at a time
    assert not [n for n in names if n.endswith(".grad_weight")]
    k = names.index(f"{fc}.weight.update")
    assert compiled.graph.steps[k].kernel == "te_fully_connected_sgd_s8"
    assert f"{fc}.weight.update" in checked  # against the reference's whole-filter gradient and update
    assert compiled.plan.buffers[("scratch", k)].size == 4 * compiled.graph.steps[k].attrs["input_depth"]
    # fused update: each gradient is immediately followed by its update
    for k, n in enumerate(names):
        if n.endswith((".grad_weight", ".grad_bias")):
            assert names[k + 1] == n.replace(".grad_weight", ".weight.update").replace(".grad_bias", ".bias.update")
            # and the gradient's buffer dies there: the planner may reuse it from the next step on
            graph, plan = compiled.graph, compiled.plan
            assert plan.buffers[graph.root(graph.steps[k].output)].last == k + 1
    # invoke shares the trained parameters: the next step's forward equals invoke's output
    probs = host.invoke(x)
    host.train_step(x, label)
    training = compiled.metadata["training"]
    np.testing.assert_array_equal(host.trace[training["steps"][training["forward_steps"] - 1]["name"]], probs)


def test_last_two_layers_with_channel_ratio_match_reference(cnn):
    cfg = TrainingConfig(weights=[-2, -1], channel_ratio={-2: 0.5, -1: 0.5}, learning_rate=2.0)
    compiled, host, checked, x, _ = check_one_step(cnn, cfg, seed=2)
    layers = [L["name"] for L in compiled.metadata["training"]["layers"]]
    names = step_names(compiled, "backward") + step_names(compiled, "update")
    # nothing below the lowest trained layer (pw): no gradient for conv1/dw, no pw input gradient
    assert not any(n.startswith((layers[0] + ".", layers[1] + ".")) for n in names)
    assert f"{layers[2]}.grad_input" not in names and f"{layers[3]}.grad_input" in names
    assert not any("bias" in n for n in names)
    # the frozen first stages keep patch-based inference (they are never read by the backward pass)
    forward = compiled.metadata["training"]["forward_passes"]
    assert [c["disabled"] for c in forward if c["chosen"]] == [[]]
    assert any(s.notes.get("patch_of") for s in compiled.graph.steps[:compiled.training.forward_steps])
    params = {p["name"]: p for p in compiled.metadata["training"]["parameters"]}
    assert params[f"{layers[2]}.weight"]["trained_channels"] == 4
    assert params[f"{layers[3]}.weight"]["trained_channels"] == 1
    # the FC's fused weight update covers the trained rows only
    fc_update = next(s for s in compiled.graph.steps if s.name == f"{layers[3]}.weight.update")
    assert fc_update.kernel == "te_fully_connected_sgd_s8" and fc_update.attrs["output_depth"] == 1


def test_inplace_depthwise_kept_only_where_safe():
    """A stride-1 depthwise runs in place over its input in inference.  Training its bias (and above)
    reads only its output: the in-place kernel stays, and the step still matches the reference.
    Training the first conv reads that input (its ReLU mask): the in-place pass is turned off."""
    data = small_cnn(dw_stride=1)
    cfg = TrainingConfig(biases=[1, 2, 3], learning_rate=0.5)
    compiled, host, checked, x, _ = check_one_step(data, cfg, seed=4)
    forward = [s.kernel for s in compiled.graph.steps[:compiled.training.forward_steps]]
    assert "te_depthwise_conv2d_inplace_s8" in forward
    assert f"{compiled.metadata['training']['layers'][1]['name']}.bias.update" in checked
    every = compile_training(data, {"biases": "all"})
    assert "te_depthwise_conv2d_inplace_s8" not in [s.kernel for s in every.graph.steps]
    refused = [c for c in every.metadata["training"]["forward_passes"] if not c["safe"]]
    assert refused and all("overwrites in place" in c["reason"] for c in refused)


def test_forward_is_the_deployed_inference(cnn):
    compiled = compile_training(cnn, {"biases": "all"}, name="cnn")
    host = compiled.host(debug=True)
    inference = te.compile(cnn, name="cnn_inf")
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = rng.integers(-128, 128, size=(1, 8, 8, 1), dtype=np.int8)
        want = list(inference.run([x]).values())[0]
        np.testing.assert_array_equal(host.invoke(x), want)  # before any update
    host.train_step(x, 0)
    last_forward = compiled.metadata["training"]["steps"][compiled.metadata["training"]["forward_steps"] - 1]
    np.testing.assert_array_equal(host.trace[last_forward["name"]], want)
    # train_init puts the model file's parameters back
    host.train_init()
    np.testing.assert_array_equal(host.invoke(x), want)


def test_only_fc_bias_prunes_everything_below(cnn):
    compiled = compile_training(cnn, {"biases": [-1], "learning_rate": 0.1}, name="cnn")
    fc = compiled.metadata["training"]["layers"][-1]["name"]
    assert step_names(compiled, "backward") == [f"{fc}.activation_grad", f"{fc}.grad_bias"]
    assert step_names(compiled, "update") == [f"{fc}.bias.update"]


# --------------------------------------------------------------------------- memory
def test_sparse_update_arena_is_several_times_smaller_than_full():
    data = small_cnn(c1=8, c2=96, classes=16, stride1=2)
    sparse = compile_training(data, {"biases": "all"})
    full = compile_training(data, {"biases": "all", "weights": [0, 1, 2, 3]})
    a = sparse.metadata["training"]["memory"]
    f = full.metadata["training"]["memory"]
    # the full update keeps every weight in SRAM and the layers' inputs for their weight gradients; it
    # fuses each CONV_2D / FC filter's gradient with its update, so no whole conv filter's gradient is held
    assert f["arena_bytes"] >= 1.5 * a["arena_bytes"], (a, f)
    kernels = [s.kernel for s in full.graph.steps]
    assert kernels.count("te_conv2d_sgd_s8") == 2 and kernels.count("te_fully_connected_sgd_s8") == 1
    assert "te_conv2d_grad_weights_s8" not in kernels and "te_fully_connected_grad_weights_s8" not in kernels
    # with momentum the whole filters' gradients are computed (their velocities are kept anyway)
    momentum = compile_training(data, {"biases": "all", "weights": [0, 1, 2, 3], "momentum": 0.9})
    assert "te_conv2d_grad_weights_s8" in [s.kernel for s in momentum.graph.steps]
    # what each keeps in SRAM: (a) the biases, full everything; counted inside the arena
    assert a["trainable_bytes"] == 4 * (8 + 8 + 96 + 16)
    assert f["trainable_bytes"] == a["trainable_bytes"] + 9 * 8 + 9 * 8 + 8 * 96 + 96 * 16
    assert a["arena_bytes"] >= a["trainable_bytes"] and f["arena_bytes"] >= f["trainable_bytes"]
    # inference alone (frozen model) needs less than either
    assert te.compile(data).metadata["memory"]["arena_bytes"] < a["arena_bytes"]


def test_trainable_in_sram_frozen_in_flash(cnn):
    compiled = compile_training(cnn, {"biases": "all", "weights": [-1]}, name="cnn")
    src, weights = compiled.files["src/cnn.c"], compiled.files["src/cnn_weights.c"]
    # every array of the weights file is const (flash)
    decls = re.findall(r"^(.*)\[\d+\] __attribute__", weights, flags=re.M)
    assert decls and all(d.startswith("const ") for d in decls)
    # the only writable array is the arena; trainable values start from const copies
    writable = re.findall(r"^static (?!const)\w+ (\w+)\[", src, flags=re.M)
    assert writable == ["cnn_arena"]
    params = compiled.metadata["training"]["parameters"]
    assert len(params) == 5 and compiled.metadata["training"]["memory"]["trainable_bytes"] == sum(
        p["bytes"] for p in params)
    # frozen weights stay in the weights file, trained ones do not
    fro = compiled.metadata["training"]["memory"]["frozen_weights_bytes"]
    assert fro == sum(t.nbytes for t in compiled.graph.constants)
    for rel, text in compiled.files.items():
        if rel.endswith((".c", ".cc", ".h")):
            code = re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)
            assert not re.search(r"\b(malloc|calloc|realloc|free)\s*\(", code), rel
    header = compiled.files["include/cnn.h"]
    for decl in ("void cnn_train_init(void);", "int cnn_train_step(const int8_t* input, int32_t label, float* loss);",
                 "int cnn_invoke(void);"):
        assert decl in header


def test_label_out_of_range_is_refused(cnn):
    compiled = compile_training(cnn, {"biases": [-1]}, name="cnn")
    with pytest.raises(te.errors.TinyEngineError, match="returned 1"):
        compiled.train_step(np.zeros((1, 8, 8, 1), np.int8), 3)


@pytest.mark.parametrize("cpu, fpu", [("cortex-m7", "fpv5-d16"), ("cortex-m4", "fpv4-sp-d16")])
def test_cortex_m_build_is_warning_free(cnn, tmp_path, cpu, fpu):
    gcc, gxx = shutil.which("arm-none-eabi-gcc"), shutil.which("arm-none-eabi-g++")
    if gcc is None or gxx is None:
        pytest.skip("arm-none-eabi toolchain not found (bash scripts/install_arm_toolchain.sh)")
    compiled = compile_training(cnn, {"biases": "all", "weights": [-2, -1], "momentum": 0.9}, name="cnn")
    project = compiled.export(str(tmp_path / "proj"))
    target = [f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=hard", f"-mfpu={fpu}", "-O2", "-Wall", "-Wextra", "-Werror"]
    inc = ["-I", os.path.join(project, "include"), "-I", os.path.join(project, "src", "kernels")]
    for src in sorted(os.listdir(os.path.join(project, "src"))):
        if src.endswith(".c"):
            res = subprocess.run([gcc, "-std=c11", *target, *inc, "-c", os.path.join(project, "src", src), "-o",
                                  str(tmp_path / (src + ".o"))], capture_output=True, text=True)
            assert res.returncode == 0, res.stderr
    for src in sorted(os.listdir(os.path.join(project, "src", "kernels"))):
        if src.endswith(".cc"):
            res = subprocess.run([gxx, "-std=c++17", "-fno-exceptions", "-fno-rtti", *target, *inc, "-c",
                                  os.path.join(project, "src", "kernels", src), "-o", str(tmp_path / (src + ".o"))],
                                 capture_output=True, text=True)
            assert res.returncode == 0, res.stderr


# --------------------------------------------------------------------------- learning
def toy_problem(n, seed):
    """Three classes a global-average-pooled CNN can tell apart: a bright, a dark and a
    checkerboard 8x8 image, each with noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    base = [np.full((8, 8), 80.0), np.full((8, 8), -80.0), 100.0 * (np.indices((8, 8)).sum(axis=0) % 2 * 2 - 1)]
    xs = np.stack([base[c] + rng.normal(0, 25, size=(8, 8)) for c in labels])
    return np.clip(np.round(xs), -128, 127).astype(np.int8).reshape(n, 1, 8, 8, 1), labels


def test_several_steps_reduce_the_loss():
    """SGD on the toy problem: the mean loss of an epoch falls, and the classifier beats chance.
    The logits get a wide fixed range: a range calibrated on random inputs is so narrow that
    the int8 logits saturate (and the mask stops the gradient) long before the loss is low."""
    data = small_cnn(logits_range=(-8.0, 8.0))
    compiled = compile_training(data, {"biases": "all", "weights": [-2, -1], "learning_rate": 0.05}, name="cnn")
    host = compiled.host()
    xs, labels = toy_problem(24, seed=3)
    before = np.mean([np.argmax(host.invoke(x)) == y for x, y in zip(xs, labels)])
    losses = [np.mean([host.train_step(x, int(y)) for x, y in zip(xs, labels)]) for _ in range(12)]
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.75 * losses[0], losses
    accuracy = np.mean([np.argmax(host.invoke(x)) == y for x, y in zip(xs, labels)])
    assert accuracy >= 0.6 and accuracy > before, (before, accuracy, losses)  # chance: 1/3


def test_momentum_keeps_a_velocity(cnn):
    cfg = TrainingConfig(biases=[-1], momentum=0.9, learning_rate=0.5)
    compiled = compile_training(cnn, cfg, name="cnn")
    assert compiled.metadata["training"]["memory"]["momentum_bytes"] == 4 * 3
    host = compiled.host(debug=True)
    ops = read_model(cnn)
    fc = [o for o in ops if o["op"] == "FULLY_CONNECTED"][0]
    s = np.repeat(fc["w_scale"], 3) if fc["w_scale"].size == 1 else fc["w_scale"]
    x = np.random.default_rng(9).integers(-128, 128, size=(1, 8, 8, 1), dtype=np.int8)
    bias, velocity = fc["b"].copy(), np.zeros(3)
    for _ in range(3):
        host.train_step(x, 2)
        gb = host.trace[f"{fc['name']}.grad_bias"]
        want, velocity = ref.qas_sgd(bias, gb, s, 0.5, 1, momentum=0.9, velocity=velocity,
                                     input_scale=fc["in_q"][0][0])
        got = host.trace[f"{fc['name']}.bias.update"]
        assert np.abs(got.astype(np.int64) - want).max() <= 1
        bias = got.copy()  # follow the C (a tie may have rounded the other way)
    host.train_init()  # zeroes the velocity and restores the bias
    np.testing.assert_array_equal(host.parameter(0), fc["b"])


# --------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("config, message", [
    ({"biases": "all", "learning": 0.1}, "unknown key"),
    ({"biases": "all", "learning_rate": -1}, "learning_rate"),
    ({"biases": "all", "momentum": 1.0}, "momentum"),
    ({}, "trains nothing"),
    ({"biases": "some"}, "biases"),
    ({"weights": [-1], "channel_ratio": {"-1": 0}}, "channel_ratio"),
    ({"weights": "fc"}, "list of layers"),
])
def test_bad_configs_are_refused(config, message):
    with pytest.raises(UsageError, match=message):
        load_config(config)


@pytest.mark.parametrize("config, message", [
    ({"weights": [7]}, "has 4 layers"),
    ({"biases": ["nope"]}, "not one of the model's layers"),
    ({"weights": [-1], "channel_ratio": {"-2": 0.5}}, "not trained"),
    ({"weights": [1], "channel_ratio": {"1": 0.5}}, "depthwise"),
])
def test_configs_that_do_not_fit_the_model_are_refused(cnn, config, message):
    with pytest.raises(UsageError, match=message):
        compile_training(cnn, config)


def test_config_file(tmp_path, cnn):
    path = tmp_path / "train.json"
    path.write_text('{"biases": "all", "weights": ["%s"], "learning_rate": 0.1}' % read_model(cnn)[-2]["name"])
    compiled = compile_training(cnn, str(path))
    assert [p["kind"] for p in compiled.metadata["training"]["parameters"]].count("weight") == 1
    with pytest.raises(UsageError, match="not valid JSON"):
        path.write_text("{")
        load_config(str(path))
    with pytest.raises(UsageError, match="cannot read"):
        load_config(str(tmp_path / "missing.json"))


def test_onnx_models_are_refused():
    from tinyengine_tvm.modelgen.onnx_qdq import small_cnn_model

    with pytest.raises(UsageError, match="TFLite"):
        compile_training(small_cnn_model(), {"biases": "all"})


SANITIZER_DRIVER = r"""
#include <stdio.h>
#include <stdint.h>
#include "cnn.h"
/* Three training steps then one inference on a fixed input; prints the losses and the output. */
int main(void) {
  static int8_t x[CNN_INPUT_0_SIZE];
  static int8_t out[CNN_OUTPUT_0_SIZE];
  for (int i = 0; i < CNN_INPUT_0_SIZE; ++i) x[i] = (int8_t)((i * 37) % 256 - 128);
  cnn_train_init();
  for (int k = 0; k < 3; ++k) {
    float loss = 0.0f;
    if (cnn_train_step(x, k % CNN_NUM_CLASSES, &loss) != 0) return 1;
    printf("%.9g\n", (double)loss);
  }
  if (cnn_run(x, out) != 0) return 2;
  for (int i = 0; i < CNN_OUTPUT_0_SIZE; ++i) printf("%d\n", out[i]);
  return 0;
}
"""


def test_sanitizers_clean_full_update_with_momentum(cnn, tmp_path):
    """Every parameter trained, with momentum, under -fsanitize=address,undefined: no report, and the
    same losses and output as the plain host build."""
    if shutil.which("gcc") is None or shutil.which("g++") is None:
        pytest.skip("gcc/g++ not found")
    compiled = compile_training(cnn, {"biases": "all", "weights": [0, 1, 2, 3], "momentum": 0.9,
                                      "learning_rate": 0.2}, name="cnn")
    project = compiled.export(str(tmp_path / "proj"))
    flags = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-Wall", "-Wextra", "-Werror"]
    inc = ["-I", os.path.join(project, "include"), "-I", os.path.join(project, "src", "kernels")]
    (tmp_path / "driver.c").write_text(SANITIZER_DRIVER)
    objs = []
    for src in [os.path.join(project, "src", f) for f in sorted(os.listdir(os.path.join(project, "src")))
                if f.endswith(".c")] + [str(tmp_path / "driver.c")]:
        objs.append(src + ".o")
        subprocess.run(["gcc", "-std=c11", *flags, *inc, "-c", src, "-o", objs[-1]], check=True)
    kdir = os.path.join(project, "src", "kernels")
    for src in sorted(f for f in os.listdir(kdir) if f.endswith(".cc")):
        objs.append(os.path.join(kdir, src + ".o"))
        subprocess.run(["g++", "-std=c++17", "-fno-exceptions", "-fno-rtti", *flags, *inc, "-c",
                        os.path.join(kdir, src), "-o", objs[-1]], check=True)
    exe = str(tmp_path / "train_asan")
    subprocess.run(["g++", *flags, "-o", exe, *objs], check=True)
    proc = subprocess.run([exe], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "runtime error" not in proc.stderr and "AddressSanitizer" not in proc.stderr
    lines = proc.stdout.split()
    x = np.array([(i * 37) % 256 - 128 for i in range(64)], np.int8).reshape(1, 8, 8, 1)
    host = compiled.host()
    host.train_init()
    losses = [host.train_step(x, k % 3) for k in range(3)]
    np.testing.assert_allclose([float(v) for v in lines[:3]], losses, rtol=1e-6)
    np.testing.assert_array_equal([int(v) for v in lines[3:]], host.invoke(x).reshape(-1))


def test_deterministic(cnn):
    cfg = {"biases": "all", "weights": [-2, -1], "channel_ratio": {"-2": 0.5}}
    assert compile_training(cnn, cfg, name="cnn").files == compile_training(cnn, cfg, name="cnn").files


def test_one_step_on_qemu(cnn):
    """One train_step then one inference on the emulated Cortex-M7 (mps2-an500): the same loss as
    the host build (float32 on both; allowed 1e-5 relative for the compilers' contraction choices)
    and class scores within 1 of the host's after the update (a rounding tie may fall the other way)."""
    from tinyengine_tvm.runtime.firmware import missing_tools
    from tinyengine_tvm.training.qemu import train_step_on_qemu

    missing = missing_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} not found: run scripts/install_arm_toolchain.sh")
    compiled = compile_training(cnn, {"biases": "all", "weights": [-2, -1], "learning_rate": 0.5}, name="cnn")
    x = np.random.default_rng(11).integers(-128, 128, size=(1, 8, 8, 1), dtype=np.int8)
    loss, scores, report = train_step_on_qemu(compiled, x, 2, board="mps2-an500")
    host = compiled.host()
    host.train_init()
    want_loss = host.train_step(x, 2)
    assert loss == pytest.approx(want_loss, rel=1e-5)
    assert np.abs(scores.astype(np.int64) - host.invoke(x)).max() <= 1
    assert report["status"] == "ok" and report["instructions"] > 0


def test_tvmc_train_compile(cnn, tmp_path, capsys):
    from tinyengine_tvm.cli import main

    model = tmp_path / "cnn.tflite"
    model.write_bytes(cnn)
    config = tmp_path / "train.json"
    config.write_text('{"biases": "all", "weights": [-1], "learning_rate": 0.1}')
    out = tmp_path / "proj"
    assert main(["train-compile", str(model), "--config", str(config), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "cnn_train_step" in text and "training arena" in text
    header = (out / "include" / "cnn.h").read_text()
    assert "int cnn_train_step(const int8_t* input, int32_t label, float* loss);" in header
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["config"]["weights"] == [-1]
    # a bad configuration is a usage error (status 2), before anything is written
    config.write_text('{"biases": "all", "learning_rate": 0}')
    assert main(["train-compile", str(model), "--config", str(config), "-o", str(tmp_path / "other")]) == 2
    assert "learning_rate" in capsys.readouterr().err and not (tmp_path / "other").exists()
    assert main(["train-compile", str(model), "--config", str(config), "-o", str(out), "--sram-budget", "64"]) == 2


def residual_cnn(seed=0) -> bytes:
    """conv 3x3 -> ReLU (h0) -> conv 1x1 -> ReLU -> conv 1x1 -> ADD h0 -> MEAN -> FC -> SOFTMAX."""
    g = QuantizedGraph(seed=seed, samples=16)
    x = g.input((1, 6, 6, 2))
    h0 = g.conv2d(x, 4, (3, 3), (1, 1), (1, 1), "SAME", "RELU", True, prefix="conv1")
    h1 = g.conv2d(h0, 6, (1, 1), (1, 1), (1, 1), "SAME", "RELU", True, prefix="expand")
    h2 = g.conv2d(h1, 4, (1, 1), (1, 1), (1, 1), "SAME", "NONE", True, prefix="project")
    h3 = g.add(h2, h0, prefix="add")
    m = g.mean(h3, (1, 2), keep_dims=False, prefix="mean")
    y = g.fully_connected(m, 3, "NONE", prefix="fc", qparams=choose_qparams(-4.0, 4.0))
    return g.finish([g.softmax(y, prefix="softmax")])


def test_residual_gradients_add_up():
    """Through a residual ADD the skip input receives dY (masked by the ADD's clamp) and the branch's
    first layer adds its input gradient into it: the sum, and every gradient, match the reference."""
    data = residual_cnn()
    cfg = TrainingConfig(biases="all", weights=[0], learning_rate=0.5)
    compiled = compile_training(data, cfg, name="res")
    host = compiled.host(debug=True)
    x = np.random.default_rng(3).integers(-128, 128, size=(1, 6, 6, 2), dtype=np.int8)
    loss = host.train_step(x, 1)
    tr = host.trace
    ops = read_model(data)
    conv1, expand, project, add, mean, fc = ops[:6]
    assert [o["op"] for o in (conv1, expand, project, add, mean, fc)] == \
        ["CONV_2D", "CONV_2D", "CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED"]
    act = {o["name"]: tr[o["name"]] for o in ops}

    def q(o):
        return o["out_q"][0][0], int(o["out_q"][1][0])

    def mask(o, dy, kind):
        lo, hi = ref.activation_range(kind, *q(o))
        return ref.activation_grad(act[o["name"]], dy.reshape(act[o["name"]].shape), lo, hi)

    want_loss, dz = ref.softmax_cross_entropy(act[fc["name"]], *q(fc), np.array([1]))
    assert loss == pytest.approx(want_loss, rel=1e-5)
    s_fc = np.repeat(fc["w_scale"], 3) if fc["w_scale"].size == 1 else fc["w_scale"]
    dy = mask(fc, dz, "none")
    d_mean = ref.fully_connected_grad_input(dy, fc["w"], s_fc)
    d_h3 = ref.mean_grad(d_mean, 36).reshape(1, 6, 6, 4)
    d_add = mask(add, d_h3, "none")
    exp = {f"{add['name']}.activation_grad": d_add, f"{mean['name']}.grad_input": d_h3,
           f"{fc['name']}.grad_input": d_mean}
    zero = (0, 0)
    dy_p = mask(project, d_add, "none")
    d_h1 = ref.conv2d_grad_input(dy_p, project["w"], project["w_scale"], (1, 6, 6, 6), (1, 1), zero, (1, 1))
    dy_e = mask(expand, d_h1, "relu")
    d_h0 = d_add + ref.conv2d_grad_input(dy_e, expand["w"], expand["w_scale"], (1, 6, 6, 4), (1, 1), zero, (1, 1))
    exp[f"{project['name']}.grad_input"] = d_h1
    exp[f"{expand['name']}.grad_input"] = d_h0  # the skip's share plus the branch's
    dy_c = mask(conv1, d_h0, "relu")
    exp[f"{conv1['name']}.activation_grad"] = dy_c
    gw, gb = ref.conv2d_grad_weights(dy_c, x, conv1["in_q"][0][0], int(conv1["in_q"][1][0]), conv1["w_scale"],
                                     (3, 3), (1, 1), (1, 1), (1, 1))
    exp[f"{conv1['name']}.grad_bias"] = gb  # its weight gradient is applied filter by filter (fused below)
    assert f"{conv1['name']}.grad_weight" not in tr
    for name, want in exp.items():
        got = tr[name]
        np.testing.assert_allclose(got.reshape(-1), np.asarray(want).reshape(-1), rtol=1e-4,
                                   atol=1e-5 * np.abs(want).max(), err_msg=name)
    # the accumulating step writes into the skip's gradient buffer, which lives until then
    steps = compiled.graph.steps
    acc = next(k for k, s in enumerate(steps) if s.name == f"{expand['name']}.grad_input")
    assert steps[acc].attrs["accumulate"] == 1
    skip = next(k for k, s in enumerate(steps) if s.name == f"{add['name']}.activation_grad")  # h0's share
    assert compiled.graph.root(steps[acc].output) == compiled.graph.root(steps[skip].output)
    # and the first conv's weights move by the reference's update
    new, _ = ref.qas_sgd(conv1["w"], gw, conv1["w_scale"], 0.5, 18)
    assert_update(tr[f"{conv1['name']}.weight.update"], (new, conv1["w"], gw, conv1["w_scale"], None, 18), 0.5,
                  "conv1.weight.update")


def test_mcunet_style_model_trains_its_last_layers():
    """The zoo's MCUNet-style VWW stand-in (float input QUANTIZEd, inverted residuals, global pooling,
    SOFTMAX then DEQUANTIZE): its last layers train on the host, repeated steps on one sample lower its
    loss, and the frozen first stages keep the inference memory passes that are safe."""
    from tinyengine_tvm.modelgen import zoo

    data = zoo.mcunet_vww(resolution=48, width=0.5, classes=2)
    compiled = compile_training(data, {"biases": [-3, -2, -1], "weights": [-1], "learning_rate": 0.05})
    assert "const float* input" in compiled.files[f"include/{compiled.name}.h"]
    chosen = next(c for c in compiled.metadata["training"]["forward_passes"] if c["chosen"])
    assert len(chosen["disabled"]) < 3, chosen  # some memory pass that can be unsafe was kept
    host = compiled.host()
    x = np.random.default_rng(0).uniform(-1, 1, size=(1, 48, 48, 3)).astype(np.float32)
    losses = [host.train_step(x, 1) for _ in range(4)]
    # (the int8 logits of this random model saturate near ln 2, where the clamp mask stops the gradient)
    assert losses[-1] < 0.75 * losses[0] and all(b <= a + 1e-6 for a, b in zip(losses, losses[1:])), losses
    names = step_names(compiled, "backward")
    layers = [L["name"] for L in compiled.metadata["training"]["layers"]]
    assert not any(n.startswith(tuple(f"{L}." for L in layers[:-3])) for n in names)


def test_choose_under_sram_budget():
    """"sram_budget" instead of named parts: every scheme is planned for real, the chosen one fits, a
    larger budget never buys less (by the search's contribution), and too small a budget is refused."""
    data = small_cnn(c1=8, c2=96, classes=16, stride1=2)
    chosen = []
    for budget in (1500, 3000, 6000, 12000):
        compiled = compile_training(data, {"sram_budget": budget, "learning_rate": 0.05})
        sel = compiled.metadata["training"]["selection"]
        assert compiled.metadata["training"]["memory"]["arena_bytes"] <= budget
        final = next(t for t in sel["tried"] if t["config"] == sel["chosen"])
        assert final["fits"] and final["arena_bytes"] == compiled.metadata["training"]["memory"]["arena_bytes"]
        # no scheme it planned that fits and extends the choice was left out: the choice is maximal
        assert all(t["contribution"] <= final["contribution"] or not t["fits"] or
                   not set(sel["chosen"]["biases"]) <= set(t["config"]["biases"]) for t in sel["tried"])
        chosen.append(final["contribution"])
    assert chosen == sorted(chosen) and chosen[-1] > chosen[0]
    # the largest budget trains everything; the project runs
    assert compiled.metadata["training"]["config"]["weights"] == [0, 1, 2, 3]
    assert np.isfinite(compiled.train_step(np.zeros((1, 8, 8, 1), np.int8), 3))
    with pytest.raises(te.errors.MemoryBudgetError, match="not even the last layer's bias"):
        compile_training(data, {"sram_budget": 256})
    with pytest.raises(UsageError, match="not both"):
        load_config({"sram_budget": 4096, "biases": "all"})


def pooling_cnn(seed=0) -> bytes:
    """conv 3x3 -> ReLU -> MAX_POOL 2x2 -> conv 1x1 -> global AVERAGE_POOL_2D -> RESHAPE -> FC (logits out:
    no SOFTMAX, so the loss takes the model's output itself)."""
    g = QuantizedGraph(seed=seed, samples=16)
    x = g.input((1, 8, 8, 1))
    h0 = g.conv2d(x, 4, (3, 3), (1, 1), (1, 1), "SAME", "RELU", True, prefix="conv1")
    p = g.max_pool(h0, (2, 2), (2, 2), "VALID", prefix="maxpool")
    h1 = g.conv2d(p, 6, (1, 1), (1, 1), (1, 1), "SAME", "RELU", True, prefix="pw")
    a = g.avg_pool(h1, (4, 4), (1, 1), "VALID", prefix="gap")
    r = g.reshape(a, (1, 6), prefix="flatten")
    return g.finish([g.fully_connected(r, 3, "NONE", prefix="fc", qparams=choose_qparams(-4.0, 4.0))])


def test_pooling_gradients_match_reference():
    data = pooling_cnn()
    compiled = compile_training(data, TrainingConfig(biases="all", learning_rate=0.5), name="pool")
    host = compiled.host(debug=True)
    x = np.random.default_rng(6).integers(-128, 128, size=(1, 8, 8, 1), dtype=np.int8)
    loss = host.train_step(x, 0)
    tr = host.trace
    ops = {o["op"]: o for o in read_model(data)}
    conv1 = read_model(data)[0]
    pw = [o for o in read_model(data) if o["op"] == "CONV_2D"][1]
    mp, gap, fc = ops["MAX_POOL_2D"], ops["AVERAGE_POOL_2D"], ops["FULLY_CONNECTED"]

    def q(o):
        return o["out_q"][0][0], int(o["out_q"][1][0])

    def mask(o, dy, kind):
        lo, hi = ref.activation_range(kind, *q(o))
        return ref.activation_grad(tr[o["name"]], dy.reshape(tr[o["name"]].shape), lo, hi)

    logits = tr[fc["name"]]
    want_loss, dz = ref.softmax_cross_entropy(logits, *q(fc), np.array([0]))
    assert loss == pytest.approx(want_loss, rel=1e-5)
    s_fc = np.repeat(fc["w_scale"], 3) if fc["w_scale"].size == 1 else fc["w_scale"]
    d_fc = mask(fc, dz, "none")
    d_gap = ref.fully_connected_grad_input(d_fc, fc["w"], s_fc).reshape(1, 1, 1, 6)
    d_h1 = ref.avg_pool_grad(mask(gap, d_gap, "none"), (1, 4, 4, 6), (4, 4), (1, 1), (0, 0))
    dy_pw = mask(pw, d_h1, "relu")
    d_p = ref.conv2d_grad_input(dy_pw, pw["w"], pw["w_scale"], (1, 4, 4, 4), (1, 1), (0, 0), (1, 1))
    d_h0 = ref.max_pool_grad(tr[conv1["name"]], mask(mp, d_p, "none"), (2, 2), (2, 2), (0, 0))
    dy_c = mask(conv1, d_h0, "relu")
    _, gb = ref.conv2d_grad_weights(dy_c, x, conv1["in_q"][0][0], int(conv1["in_q"][1][0]), conv1["w_scale"],
                                    (3, 3), (1, 1), (1, 1), (1, 1))
    exp = {f"{gap['name']}.grad_input": d_h1, f"{pw['name']}.grad_input": d_p,
           f"{mp['name']}.grad_input": d_h0, f"{conv1['name']}.activation_grad": dy_c,
           f"{conv1['name']}.grad_bias": gb}
    assert {f"{gap['name']}.grad_input", f"{mp['name']}.grad_input"} <= set(step_names(compiled, "backward"))
    for name, want in exp.items():
        np.testing.assert_allclose(tr[name].reshape(-1), np.asarray(want).reshape(-1), rtol=1e-4,
                                   atol=1e-5 * np.abs(want).max(), err_msg=name)
    assert np.abs(dy_c).max() > 0  # the gradient reached the first layer through both pools


def test_learning_rate_is_set_at_run_time(cnn):
    """<name>_train_set_learning_rate: 0 freezes every parameter; another rate gives the reference's
    update at that rate."""
    compiled = compile_training(cnn, {"biases": [-1], "learning_rate": 0.5}, name="cnn")
    assert "void cnn_train_set_learning_rate(float learning_rate);" in compiled.files["include/cnn.h"]
    host = compiled.host(debug=True)
    x = np.random.default_rng(8).integers(-128, 128, size=(1, 8, 8, 1), dtype=np.int8)
    host.train_init()  # the parameters are in the arena from here on
    before = host.parameter(0)
    host.set_learning_rate(0.0)
    host.train_step(x, 1)
    np.testing.assert_array_equal(host.parameter(0), before)
    host.set_learning_rate(3.0)
    host.train_step(x, 1)
    fc = [o for o in read_model(cnn) if o["op"] == "FULLY_CONNECTED"][0]
    s = np.repeat(fc["w_scale"], 3) if fc["w_scale"].size == 1 else fc["w_scale"]
    gb = host.trace[f"{fc['name']}.grad_bias"]
    want, _ = ref.qas_sgd(before, gb, s, 3.0, 1, input_scale=fc["in_q"][0][0])
    assert_update(host.parameter(0), (want, before, gb, s, fc["in_q"][0][0], 1), 3.0, "fc.bias.update")
    assert np.abs(host.parameter(0).astype(np.int64) - before).max() > 0
