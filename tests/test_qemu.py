"""Generated projects on an emulated Cortex-M (QEMU) match the host build and TFLM.

Needs arm-none-eabi-gcc and qemu-system-arm (scripts/install_arm_toolchain.sh);
without them the firmware tests are skipped with the reason. One build
directory is shared by the whole session, so each kernel is compiled once per
core and each model's firmware once per board.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm.errors import MemoryBudgetError, TinyEngineError
from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.runtime import qemu
from tinyengine_tvm.targets import BOARDS, CORES, get_board, qemu_board_for, register_tags
from tinyengine_tvm.testing import SHARED_MODELS, random_inputs, shipped_inputs, tflm_run

MISSING = qemu.missing_tools()
requires_arm = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not found: run scripts/install_arm_toolchain.sh (as root) "
                          "to run the Cortex-M/QEMU tests")
EMULATED = ["mps2-an500", "mps2-an386"]  # Cortex-M7, Cortex-M4


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def arm_build(tmp_path_factory):
    return str(tmp_path_factory.mktemp("arm-build"))


class _Models:
    """Compiled models (exported once) and their firmware (built once per board)."""

    def __init__(self, root, build_dir):
        self.root, self.build_dir = root, build_dir
        self.compiled, self.qemu = {}, {}

    def compile(self, key, path):
        if key not in self.compiled:
            c = te.compile(path)
            c.export(os.path.join(self.root, key))
            self.compiled[key] = (c, open(path, "rb").read())
        return self.compiled[key]

    def project(self, key):
        return os.path.join(self.root, key)

    def on(self, key, board):
        if (key, board) not in self.qemu:
            self.qemu[key, board] = qemu.QemuModel(self.project(key), board, self.build_dir)
        return self.qemu[key, board]


@pytest.fixture(scope="session")
def models(tmp_path_factory, arm_build):
    return _Models(str(tmp_path_factory.mktemp("projects")), arm_build)


@pytest.fixture(scope="session")
def default(models):
    compiled, data = models.compile("default", default_model_path())
    return compiled, data


def _check_equal(model, got, host, tflm):
    assert list(got) == list(host), f"{model}: output names differ"
    for (name, g), h, t in zip(got.items(), host.values(), tflm):
        assert g.dtype == h.dtype and g.shape == h.shape, f"{model}: output '{name}' {g.dtype}{g.shape}"
        np.testing.assert_array_equal(g, h, err_msg=f"{model}: QEMU != host for '{name}'")
        np.testing.assert_array_equal(g, t.reshape(g.shape), err_msg=f"{model}: QEMU != TFLM for '{name}'")


# --------------------------------------------------------------------------- targets (no tools needed)
def test_board_table():
    for name in ("NUCLEO-F746ZG", "STM32F746G-DISCO", "NUCLEO-H743ZI", "NUCLEO-F412ZG", "NUCLEO-L4R5ZI",
                 "DISCO-L475-IOT1", "mps2-an386", "mps2-an500", "mps3-an547"):
        b = get_board(name.lower())
        assert b.name == name and b.core in CORES
        assert b.sram_bytes > 0 and b.flash_bytes > 0 and b.clock_hz > 0 and b.uart_base > 0
        assert b.gcc_flags()[0] == f"-mcpu={b.core}"
        assert qemu_board_for(b).emulated and qemu_board_for(b).core == b.core
    assert get_board("NUCLEO-F746ZG").sram_bytes == 320 * 1024
    assert get_board("NUCLEO-H743ZI").flash_bytes == 2 * 1024 * 1024
    assert [BOARDS[b].qemu_machine for b in ("mps2-an386", "mps2-an500", "mps3-an547")] == \
        ["mps2-an386", "mps2-an500", "mps3-an547"]
    with pytest.raises(TinyEngineError, match="unknown board"):
        get_board("arduino-uno")


def test_tvm_target_tags():
    import tvm

    register_tags()
    register_tags()  # idempotent
    for core in ("cortex-m4", "cortex-m7", "cortex-m55"):
        t = tvm.target.Target(f"tinyengine/{core}")
        assert t.kind.name == "c" and str(t.attrs["mcpu"]) == core
    assert bool(tvm.target.Target("tinyengine/cortex-m55").attrs["feature.has_mve"])
    assert not bool(tvm.target.Target("tinyengine/cortex-m7").attrs["feature.has_mve"])


def test_glue_matches_header(default):
    compiled, _ = default
    text = qemu.glue_source(compiled.metadata)
    assert f"{compiled.name}_run(te_input_0, te_output_0)" in text
    assert f"{compiled.name.upper()}_INPUT_0_SIZE" in text


# --------------------------------------------------------------------------- on QEMU
@requires_arm
@pytest.mark.parametrize("board", EMULATED)
def test_default_model_matches_host_and_tflm(default, models, board, tflm):
    compiled, data = default
    q = models.on("default", board)
    for seed in range(3):
        x = random_inputs(compiled.metadata["inputs"], seed)
        got, report = q.run(x)
        _check_equal("default", got, compiled.run(x), tflm_run(data, x))
    assert report["board"] == board and report["core"] == get_board(board).core
    assert report["flash_bytes"] >= compiled.metadata["memory"]["weights_bytes"]
    assert report["sram_bytes"] >= compiled.metadata["memory"]["arena_bytes"] + report["stack_peak_bytes"]
    # Memory truth: the model's static RAM in the ELF is exactly the planner's arena.
    assert report["model_static_ram_bytes"] == compiled.metadata["memory"]["arena_bytes"]
    nm = subprocess.run(["arm-none-eabi-nm", "-S", report["elf"]], capture_output=True, text=True, check=True).stdout
    sizes = {line.split()[-1]: int(line.split()[1], 16) for line in nm.splitlines() if len(line.split()) == 4}
    assert sizes[f"{compiled.name}_arena"] == compiled.metadata["memory"]["arena_bytes"]
    assert 0 < report["stack_peak_bytes"] < report["stack_size_bytes"]
    assert report["instructions"] > compiled.metadata["total_macs"] / 4


@requires_arm
@pytest.mark.parametrize("board", EMULATED)
@pytest.mark.parametrize("model", SHARED_MODELS)
def test_shared_model_matches_host_and_tflm(model, board, models, shared_dir, tflm):
    compiled, data = models.compile(model, os.path.join(shared_dir, f"{model}.tflite"))
    q = models.on(model, board)
    in_desc = compiled.metadata["inputs"]
    cases = [random_inputs(in_desc, 0)] + [[x] for x in shipped_inputs(model, in_desc[0])[:1]]
    for case in cases:
        got, report = q.run(case)
        _check_equal(model, got, compiled.run(case), tflm_run(data, case))
    print(f"{model} on {board}: {report['instructions']:,} instructions, stack {report['stack_peak_bytes']} B, "
          f"flash {report['flash_bytes']} B, sram {report['sram_bytes']} B")


@requires_arm
@pytest.mark.parametrize("op", ["add_model", "quantize_dequantize_model", "softmax_model", "logistic_model",
                                "hard_swish_model", "resize_nearest_model", "sub_model",
                                "squared_difference_model", "maximum_model", "data_movement_model",
                                "unary_math_model", "reduction_model", "batch_matmul_model",
                                "int16_audio_model", "int16_elementwise_model", "mixed_int8_int16_model",
                                "upsampling_model", "mnist_mlp_model", "svdf_kws_model", "comparison_model",
                                "mnist_lstm_model", "streaming_conv_model", "shape_model", "int16_extras_model"])
def test_operator_models_on_m4(op, models, tflm, tmp_path):
    """Two-input and float32-I/O models, and the kernels with float or
    exp/log arithmetic, are exact on the Cortex-M4 too."""
    from tinyengine_tvm.modelgen import quantized_ops

    path = tmp_path / f"{op}.tflite"
    path.write_bytes(getattr(quantized_ops, op)())
    compiled, data = models.compile(op, str(path))
    q = models.on(op, "mps2-an386")
    for seed in range(2):
        x = random_inputs(compiled.metadata["inputs"], seed)
        got, _ = q.run(x)
        compiled.reset()  # a streaming model's state: each comparison is a stream's first frame
        _check_equal(op, got, compiled.run(x), tflm_run(data, x))


@requires_arm
@pytest.mark.parametrize("board", ["mps2-an500", "mps3-an547"])
@pytest.mark.parametrize("op", ["int16_audio_model", "int16_elementwise_model", "svdf_kws_model", "mnist_lstm_model",
                                "comparison_model", "upsampling_model", "unary_math_model", "streaming_conv_model",
                                "int16_extras_model", "data_movement_model", "reduction_model", "mnist_mlp_model",
                                "mixed_int8_int16_model", "shape_model", "sub_model", "maximum_model",
                                "squared_difference_model", "batch_matmul_model"])
def test_new_operator_models_on_m7_and_m55(op, board, models, tflm, tmp_path):
    """The 16x8, stateful, bool/int32-output and recent int8 operators on the
    Cortex-M7 and M55 (same portable kernels, other cores and compiler flags)."""
    from tinyengine_tvm.modelgen import quantized_ops

    path = tmp_path / f"{op}.tflite"
    path.write_bytes(getattr(quantized_ops, op)())
    compiled, data = models.compile(op, str(path))
    x = random_inputs(compiled.metadata["inputs"], 3)
    got, _ = models.on(op, board).run(x)
    compiled.reset()
    _check_equal(op, got, compiled.run(x), tflm_run(data, x))


@requires_arm
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an500", "mps3-an547"])
@pytest.mark.parametrize("op", ["layer_norm_model", "conv_transpose_model", "tanh_model", "batch_matmul_model"])
def test_onnx_operator_models_equal_the_host_on_cortex_m(op, board, models, tmp_path):
    """The ONNX-only kernels (integer LayerNormalization) and the ONNX paths into
    the TFLite kernels run on the Cortex-M4, M7 and M55 with the host build's outputs."""
    from tinyengine_tvm.modelgen import onnx_qdq

    path = tmp_path / f"{op}.onnx"
    path.write_bytes(getattr(onnx_qdq, op)(int8_io=True))
    compiled, _ = models.compile(f"onnx_{op}", str(path))
    x = random_inputs(compiled.metadata["inputs"], 5)
    got, _ = models.on(f"onnx_{op}", board).run(x)
    host = compiled.run(x)
    assert list(got) == list(host)
    for name in host:
        np.testing.assert_array_equal(got[name], host[name], err_msg=f"{op} {name} on {board}")


@requires_arm
@pytest.mark.parametrize("board", ["mps2-an386", "mps2-an500", "mps3-an547"])
def test_tflite_only_operators_on_cortex_m(board, models, tmp_path):
    """NEG and RELU_N1_TO_1 (TFLM has no int8 kernel: LiteRT's reference kernels are
    the reference) on the Cortex-M4, M7 and M55: equal to the host build and LiteRT."""
    pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert missing")
    from tinyengine_tvm.modelgen import quantized_ops
    from tinyengine_tvm.testing import litert_run

    path = tmp_path / "tflite_only.tflite"
    path.write_bytes(quantized_ops.tflite_only_ops_model())
    compiled, data = models.compile("tflite_only_ops_model", str(path))
    x = random_inputs(compiled.metadata["inputs"], 2)
    got, _ = models.on("tflite_only_ops_model", board).run(x)
    _check_equal("tflite_only_ops_model", got, compiled.run(x), litert_run(data, x))


@requires_arm
def test_instruction_count_is_deterministic(default, models):
    compiled, _ = default
    q = models.on("default", "mps2-an500")
    x = random_inputs(compiled.metadata["inputs"], 7)
    (o1, r1), (o2, r2) = q.run(x), q.run(x)
    assert r1["instructions"] == r2["instructions"] and r1["ticks"] == r2["ticks"]
    assert r1["stack_peak_bytes"] == r2["stack_peak_bytes"]
    np.testing.assert_array_equal(o1[next(iter(o1))], o2[next(iter(o2))])
    # the figure is executed instructions: ticks * 1e9 / (25 MHz * 2^6)
    assert abs(r1["instructions"] - r1["ticks"] * 1e9 / (25e6 * 64)) <= 1


@requires_arm
def test_run_on_qemu_api(default, models, arm_build):
    compiled, _ = default
    x = random_inputs(compiled.metadata["inputs"], 1)
    outputs, report = qemu.run_on_qemu(models.project("default"), {compiled.metadata["inputs"][0]["name"]: x[0]},
                                       board="mps2-an500", build_dir=arm_build)
    assert list(outputs) == [o["name"] for o in compiled.metadata["outputs"]]
    for key in ("instructions", "stack_peak_bytes", "flash_bytes", "sram_bytes", "board", "core"):
        assert key in report
    elf = qemu.build_firmware(models.project("default"), "mps2-an500", arm_build)
    assert elf == report["elf"] and os.path.isfile(elf)


@requires_arm
def test_m55_runs_default_model(default, models):
    compiled, _ = default
    x = random_inputs(compiled.metadata["inputs"], 2)
    got, report = models.on("default", "mps3-an547").run(x)
    host = compiled.run(x)
    for name in host:
        np.testing.assert_array_equal(got[name], host[name])
    assert report["core"] == "cortex-m55" and report["instructions"] > 0


# --------------------------------------------------------------------------- failures are clear
@requires_arm
def test_wrong_input_size_is_reported(default, models):
    compiled, _ = default
    q = models.on("default", "mps2-an500")
    nbytes = int(np.prod(compiled.metadata["inputs"][0]["shape"]))
    with pytest.raises(TinyEngineError, match=rf"(?s)status 3 .*wrong size of input '\w+' .*expected {nbytes} bytes, got {nbytes - 1}"):
        qemu.run_firmware(q.elf, [bytes(nbytes - 1)], "mps2-an500", output_count=1)
    with pytest.raises(TinyEngineError, match="expected shape"):
        q.run([np.zeros((1, 3), np.int8)])


@requires_arm
def test_forced_fault_is_reported(default, models, arm_build):
    compiled, _ = default
    elf = qemu.build_firmware(models.project("default"), "mps2-an386", arm_build, extra_cflags=["-DTE_FORCE_FAULT"])
    x = random_inputs(compiled.metadata["inputs"], 0)
    with pytest.raises(TinyEngineError, match=r"(?s)status 100 \(UsageFault\).*tinyengine-fault: UsageFault .*pc=0x"):
        qemu.run_firmware(elf, [x[0].tobytes()], "mps2-an386", output_count=1)


@requires_arm
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_stack_overflow_is_reported(default, models, arm_build, board):
    compiled, _ = default
    elf = qemu.build_firmware(models.project("default"), board, arm_build, stack_bytes=128)
    x = random_inputs(compiled.metadata["inputs"], 0)
    with pytest.raises(TinyEngineError, match=r"(?s)tinyengine-fault: .*stack overflow"):
        qemu.run_firmware(elf, [x[0].tobytes()], board, timeout=10, output_count=1)


@requires_arm
def test_hang_times_out(default, models, arm_build):
    compiled, _ = default
    elf = qemu.build_firmware(models.project("default"), "mps2-an500", arm_build, extra_cflags=["-DTE_FORCE_HANG"])
    x = random_inputs(compiled.metadata["inputs"], 0)
    with pytest.raises(TinyEngineError, match="did not finish within 1.5 s"):
        qemu.run_firmware(elf, [x[0].tobytes()], "mps2-an500", timeout=1.5, output_count=1)


@requires_arm
def test_wrong_output_size_is_reported(default, models, arm_build):
    compiled, _ = default
    q = qemu.QemuModel(models.project("default"), "mps2-an500", arm_build)
    q.meta = json.loads(json.dumps(q.meta))
    q.meta["outputs"][0]["shape"] = [1, 20]  # pretend the model had a larger output
    with pytest.raises(TinyEngineError, match="wrote 10 bytes, expected 20"):
        q.run(random_inputs(compiled.metadata["inputs"], 0))


@requires_arm
def test_real_boards_link_or_refuse(default, models, arm_build):
    # a real STM32 board is linked against its own memories (no QEMU machine)
    elf = qemu.build_firmware(models.project("default"), "DISCO-L475-IOT1", arm_build)
    assert qemu.elf_sizes(elf)["flash_bytes"] < get_board("DISCO-L475-IOT1").flash_bytes
    with pytest.raises(TinyEngineError, match="cannot be emulated"):
        qemu.run_on_qemu(models.project("default"), random_inputs(default[0].metadata["inputs"], 0),
                         board="DISCO-L475-IOT1", build_dir=arm_build)
    # 128 KB of SRAM cannot hold a 160 KB stack next to the model
    with pytest.raises(MemoryBudgetError, match="does not fit DISCO-L475-IOT1.*RAM overflowed by"):
        qemu.build_firmware(models.project("default"), "DISCO-L475-IOT1", arm_build, stack_bytes=160 * 1024)


@requires_arm
def test_command_line(default, models, arm_build):
    proc = subprocess.run([sys.executable, "-m", "tinyengine_tvm.runtime.qemu", "run", models.project("default"),
                           "--board", "mps2-an500", "--build-dir", arm_build], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["instructions"] > 0
