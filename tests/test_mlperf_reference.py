"""The MLPerf Tiny DUT (firmware/src/te_mlperf.c) behaves as the reference DUT
of mlcommons/tiny: results printed per benchmark as the reference submissions
print them (checked for every int8 output value against glibc's printf and a
host-compiled C expression of the kws01 reference's format), the timed window
holding only the inference loop, the reference's db buffer and messages, and
the ways in: ``tvmc micro create-project ... baremetal``, ``mlperf_host
--qemu`` and the official runner's shim (scripts/mlperf_runner_qemu.py).

Runs the bare-metal firmware under QEMU; skipped, with the reason, without
arm-none-eabi-gcc and qemu-system-arm (scripts/install_arm_toolchain.sh)."""
import contextlib
import ctypes
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm import cli
from tinyengine_tvm.micro import baremetal, mlperf_host
from tinyengine_tvm.micro.model_desc import MlperfOptions, mlperf_db_bytes
from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.runtime import client, emulator, firmware

MISSING = firmware.missing_tools()
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not found: run scripts/install_arm_toolchain.sh (as root) "
                          "to run the MLPerf DUT tests on QEMU")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
US_PER_INSTRUCTION = 2 ** firmware.ICOUNT_SHIFT / 1000.0  # -icount: 64 ns of virtual time per instruction


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return str(tmp_path_factory.mktemp("mlperf-build"))


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("mlperf-projects") / "default")
    compiled = te.compile(str(default_model_path()))
    compiled.export(out)
    return out, compiled.metadata


@contextlib.contextmanager
def dut_for(project, build, opts, *extra):
    elf = baremetal.build_serial_firmware(project, "mps2-an500", build, mlperf=opts, extra_cflags=extra)
    with emulator.QemuSerial(elf, "mps2-an500", expect_boot=False, timeout=30) as q:
        dut = mlperf_host.EembcDut(q.transport, 30)
        dut.drain()
        yield dut


def _glibc_printf3(v: float) -> str:
    """printf("%0.3f", (double)v) of the host's C library: an independent reference."""
    buf = ctypes.create_string_buffer(64)
    ctypes.CDLL(None).snprintf(buf, 64, b"%0.3f", ctypes.c_double(float(np.float32(v))))
    return buf.value.decode()


@pytest.fixture(scope="module")
def trunc3_c(tmp_path_factory):
    """The kws01 reference's way of printing a value, compiled with the host's cc."""
    if shutil.which("cc") is None:
        pytest.skip("no host C compiler (cc) for the kws01 format reference")
    d = tmp_path_factory.mktemp("trunc3")
    src = d / "trunc3.c"
    src.write_text(textwrap.dedent("""\
        #include <stdio.h>
        int main(void) {
          float v;
          while (scanf("%a", &v) == 1)
            printf("0.%d%d%d\\n", (int)(v * 10), (int)(v * 100) % 10, (int)(v * 1000) % 10);
          return 0;
        }
        """))
    exe = str(d / "trunc3")
    subprocess.run(["cc", "-O0", "-o", exe, str(src)], check=True)

    def run(values):
        text = "".join(f"{float(np.float32(v)).hex()}\n" for v in values)
        return subprocess.run([exe], input=text, capture_output=True, text=True, check=True).stdout.split()
    return run


# --------------------------------------------------------------------------- result formats
def _loads_covering_all_int8(meta, opts):
    """db blobs whose first output-size elements, copied to the output by
    TE_TEST_COPY_RUN, go through all 256 int8 output values."""
    n_out = int(np.prod(meta["outputs"][0]["shape"]))
    need = int(np.prod(meta["inputs"][0]["shape"]))
    qs = np.arange(-128, 128)
    for i in range(0, 256, n_out):
        q = np.resize(qs[i:i + n_out], n_out).astype(np.int8)
        if opts.input_mode == "raw":
            db = np.zeros(need, np.int8)
            db[:n_out] = q
            yield q, db.tobytes()
        else:  # uint8_minus_128: the DUT subtracts 128
            db = np.zeros(need, np.uint8)
            db[:n_out] = (q.astype(np.int16) + 128).astype(np.uint8)
            yield q, db.tobytes()


@pytest.mark.parametrize("version", ["kws01", "ic01", "vww01"])
def test_results_printed_as_the_reference_submission(version, default, build, trunc3_c):
    project, meta = default
    opts = MlperfOptions.create(version)
    out = meta["outputs"][0]
    assert out["dtype"] == "int8" and len(meta["outputs"]) == 1
    with dut_for(project, build, opts, "-DTE_TEST_COPY_RUN") as dut:
        for q, db in _loads_covering_all_int8(meta, opts):
            dut.load(db)
            line = dut.infer(1, 0)["results_text"]
            values = (q.astype(np.float32) - np.float32(out["zero_point"])) * np.float32(out["scale"])
            if version == "kws01":
                want = ",".join(trunc3_c(values))
            else:
                want = ",".join(_glibc_printf3(v) for v in values)
            if version == "vww01":  # the reference prints a comma after every value
                want = "".join(v + "," for v in want.split(","))
            assert line == f"m-results-[{want}]", (q, line)
            assert line == mlperf_host.expected_results(meta, {out["name"]: q.reshape(out["shape"])}, opts)


def test_python_formats_agree_with_c():
    """mlperf_host's formats (used by the accuracy checks) on values where rounding matters."""
    vals = [0.0625, 0.0635, 0.1875, 0.9995, 0.7, 1.0, 0.29296875, 0.5, 0.0005, 2.5e-4, 0.123456]
    assert [mlperf_host.fmt_printf3(v) for v in vals] == [_glibc_printf3(v) for v in vals]
    assert mlperf_host.fmt_printf3(0.0625) == "0.062"  # a tie, to even (rounding half up would print 0.063)
    assert mlperf_host.fmt_trunc3(1.0) == "0.1000" and mlperf_host.fmt_trunc3(0.0625) == "0.062"
    assert mlperf_host.fmt_trunc3(0.99609375) == "0.996" and mlperf_host.fmt_trunc3(0.7) == "0.700"


def test_ad01_mse_printed_as_printf(default, build):
    project, meta = default
    opts = MlperfOptions.create("ad01")  # float32 input quantized by the DUT; result = MSE, %0.3f
    need = int(np.prod(meta["inputs"][0]["shape"]))
    rng = np.random.default_rng(3)
    with dut_for(project, build, opts, "-DTE_TEST_COPY_RUN") as dut:
        for scale in (0.01, 0.4, 3.0):
            x = (rng.standard_normal(need) * scale).astype("<f4")
            db = x.tobytes()
            dut.load(db)
            line = dut.infer(1, 0)["results_text"]
            q = mlperf_host.inputs_from_db(meta, db, opts)[meta["inputs"][0]["name"]].reshape(-1)
            n_out = int(np.prod(meta["outputs"][0]["shape"]))
            outputs = {meta["outputs"][0]["name"]: q[:n_out].reshape(meta["outputs"][0]["shape"])}
            want = mlperf_host.expected_results(meta, outputs, opts, db)
            assert line == want
            out = meta["outputs"][0]
            deq = (q[:n_out].astype(np.float32) - np.float32(out["zero_point"])) * np.float32(out["scale"])
            mse = np.float32(0)
            for k in range(n_out):
                mse = np.float32(mse + np.float32((deq[k] - x[k]) * (deq[k] - x[k])))
            assert line == f"m-results-[{_glibc_printf3(mse / np.float32(n_out))}]"


# --------------------------------------------------------------------------- the timed window
def test_empty_window_holds_nothing_but_the_loop(default, build):
    """With an invoke that returns at once the window is a few instructions per
    inference: no stack painting/scan, input copy or checksum inside it."""
    project, meta = default
    opts = MlperfOptions.create("kws01")
    with dut_for(project, build, opts, "-DTE_TEST_NOOP_RUN") as dut:
        dut.load(bytes(mlperf_db_bytes(meta, opts.input_mode)))
        one = dut.infer(1, 0)["elapsed_us"]
        many = dut.infer(1000, 0)["elapsed_us"]
        warm = dut.infer(1, 50)["elapsed_us"]
    assert one <= 3, one  # two counter reads and one call: ~30 instructions = 2 us
    assert many <= 1000 * 20 * US_PER_INSTRUCTION, many  # <= 20 instructions per empty inference
    # Warm-ups are outside the window: 50 of them inside would add tens of us. The
    # microsecond clock quantizes a ~2 us window to within one tick either way.
    assert abs(warm - one) <= 1, (warm, one)


def test_one_inference_window_equals_the_inference(default, build):
    """``infer 1 0``'s window = the instructions of one inference as the
    tinyengine protocol's RUN measures them (counter reads excluded), within
    the cost of the two counter reads."""
    project, meta = default
    opts = MlperfOptions.create("ic01")
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=meta["inputs"][0]["shape"], dtype=np.int8)
    db = mlperf_host.db_bytes(meta, {meta["inputs"][0]["name"]: x}, opts)
    with dut_for(project, build, opts) as dut:
        dut.load(db)
        r0 = dut.infer(1, 0)
        r3 = dut.infer(1, 3)
        w1, w1_after_warmup = r0["elapsed_us"], r3["elapsed_us"]
        assert r3["results_text"] == r0["results_text"]  # warm-ups do not change the input inferred
    elf = baremetal.build_serial_firmware(project, "mps2-an500", build)
    with emulator.QemuSerial(elf, "mps2-an500", timeout=30) as q:
        q.client.write_input(0, x.tobytes())
        stats = q.client.run(1, zlib.crc32(x.tobytes()))
    inference_us = stats.first * US_PER_INSTRUCTION
    assert inference_us > 1000  # a real model
    assert 0 <= w1 - inference_us <= 3, (w1, inference_us)
    assert abs(w1_after_warmup - w1) <= 1  # the input is restored outside the window


# --------------------------------------------------------------------------- db buffer and messages
def test_db_capacity_and_messages_as_the_reference(default, build):
    project, meta = default
    opts = MlperfOptions.create("ad01")
    need = 4 * int(np.prod(meta["inputs"][0]["shape"]))
    rng = np.random.default_rng(1)
    x = rng.standard_normal(need // 4).astype("<f4").tobytes()
    y = rng.standard_normal(need // 4).astype("<f4").tobytes()
    with dut_for(project, build, opts) as dut:
        # The reference's buffer holds 96*96*3 bytes whatever the benchmark: ad01 takes more than one input.
        assert dut.command("db load 5120") == ["m-[Expecting 5120 bytes]"]
        assert dut.command("db load 27648") == ["m-[Expecting 27648 bytes]"]
        assert dut.command("db load 27649") == ["Supplied buffer size 27649 exceeds maximum of 27648"]
        assert dut.command("db load 0") == ["e-[Command 'db load' must be >0 bytes]"]
        assert dut.command("db load x") == ["e-[Command 'db load' must be >0 bytes]"]  # atoi
        assert dut.command("db load") == ["e-[Command 'db load' requires the # of bytes]"]
        assert dut.command("db") == ["e-[Command 'db' requires a subcommand]"]
        assert dut.command("infer -1") == ["e-[Inference iterations must be >0]"]
        assert dut.command("infer 1 -1") == ["e-[Inference warmup must be >=0]"]
        # More than one input's bytes: the first ones are the input (what the runner's segments rely on).
        dut.load(x)
        want = dut.infer(1, 0)["results_text"]
        dut.load(x + y)
        assert dut.infer(1, 0)["results_text"] == want
        # A short buffer is reported in elements, and the inference still runs (on the previous input).
        dut.command("db load 8")
        assert dut.command("db " + y[:8].hex()) == ["m-load-done"]
        lines = dut.command("infer 1 0")
        assert lines[0] == f"Input db has 2 elemented, expected {need // 4}"
        assert [l for l in lines if l.startswith("m-lap-us-")].__len__() == 2 and "m-infer-done" in lines
        # db print: the requested size, 8 bytes a line.
        assert dut.command("db print") == ["m-buffer-" + "-".join(f"{b:02x}" for b in y[:8])]
        dut.command("db load 3")
        assert dut.command("db 0a0b0c0d") == ["m-load-done"]
        assert dut.command("db print") == ["m-buffer-0a-0b-0c"]


# --------------------------------------------------------------------------- the ways in
def test_create_project_baremetal_and_mlperf_host(default, tmp_path, capsys):
    project, meta = default
    out = str(tmp_path / "dut")
    rc = cli.main(["micro", "create-project", out, project, "baremetal", "--project-option", "mlperf=true",
                   "board=mps2-an500", "mlperf_model=kws01"])
    assert rc == 0 and os.path.isfile(os.path.join(out, "firmware.elf"))
    assert "MLPerf Tiny DUT, model kws01" in capsys.readouterr().out
    assert mlperf_host.main(["--qemu", out, "--mode", "a", "--count", "2"]) == 0
    assert "2/2 results identical" in capsys.readouterr().out
    assert mlperf_host.main(["--qemu", out, "--mode", "p", "--iterations", "2", "--warmups", "1",
                             "--loops", "2"]) == 0
    assert "median throughput" in capsys.readouterr().out


@pytest.mark.parametrize("options,message", [
    (["mlperf_model=kws01"], "require mlperf=true"),
    (["board=NUCLEO-F746ZG"], "cannot be emulated"),
    (["mlperf=true", "mlperf_db_bytes=10"], "needs 3072 bytes"),
    (["mlperf=true", "mlperf_format=fancy"], "mlperf_format 'fancy'"),
    (["colour=blue"], "unknown project option 'colour'"),
    (["mlperf=maybe"], "use true or false"),
])
def test_create_project_baremetal_bad_options(options, message, default, tmp_path, capsys):
    project, _ = default
    out = str(tmp_path / "dut")
    assert cli.main(["micro", "create-project", out, project, "baremetal", "--project-option", *options]) == 2
    assert message in capsys.readouterr().err and not os.path.exists(out)


def test_runner_shim_lists_the_pty_with_a_usb_id(default, build, tmp_path):
    """scripts/mlperf_runner_qemu.py: a runner that only takes serial ports
    with a USB vendor id (as the official one) finds QEMU's pty as its DUT
    and talks to the firmware through it."""
    project, meta = default
    elf = baremetal.build_serial_firmware(project, "mps2-an500", build, mlperf=MlperfOptions.create("kws01"))
    runner = tmp_path / "runner"
    runner.mkdir()
    (runner / "devices.yaml").write_text("- name: l4r5zi\n  type: dut\n  baud: 115200\n  usb:\n    0x0483: 0x374B\n")
    (runner / "main.py").write_text(textwrap.dedent("""\
        import sys, time, serial
        from serial.tools import list_ports
        ports = [p for p in list_ports.comports(True) if p.vid]
        dut = [p for p in ports if (p.vid, p.pid) == (0x0483, 0x374B)]
        print("ports", [p.device for p in ports], "args", sys.argv[1:])
        s = serial.Serial(dut[0].device, 115200, timeout=0.1)
        for cmd, want in (("name", b"m-name-"), ("profile", b"m-model-")):
            s.write(cmd.encode() + b"%")
            got, end = b"", time.time() + 20
            while not (want in got and got.endswith(b"m-ready\\r\\n")) and time.time() < end:
                got += s.read(256)
            print(cmd, got.decode().replace("\\r", "").strip().splitlines())
        """))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "mlperf_runner_qemu.py"),
                           "--elf", elf, "--board", "mps2-an500", "--runner-dir", str(runner), "--", "-m", "p"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "python")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "args ['-m', 'p']" in proc.stdout
    assert "m-name-dut-[tinyengine-tvm]" in proc.stdout and "m-model-[kws01]" in proc.stdout


def test_runner_shim_bad_input(tmp_path):
    def shim(*args):
        return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "mlperf_runner_qemu.py"), *args],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "python")})

    proc = shim("--elf", str(tmp_path / "missing.elf"), "--runner-dir", str(tmp_path))
    assert proc.returncode == 2 and "no main.py" in proc.stderr
    (tmp_path / "main.py").write_text("raise SystemExit(5)\n")
    proc = shim("--elf", str(tmp_path / "missing.elf"), "--runner-dir", str(tmp_path))
    assert proc.returncode == 2 and "missing.elf: no such firmware ELF" in proc.stderr
    proc = shim("--project", str(tmp_path), "--runner-dir", str(tmp_path))
    assert proc.returncode == 2 and "not a project of" in proc.stderr
