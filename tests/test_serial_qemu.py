"""The benchmark protocol end to end: the C firmware (the Zephyr app's sources,
built bare-metal with -Werror) on QEMU, its UART connected to the host over a
loopback TCP socket or a pty; faults injected in the link and in the device;
the MLPerf Tiny / EEMBC protocol with the project's own host script.

Needs arm-none-eabi-gcc and qemu-system-arm (scripts/install_arm_toolchain.sh);
skipped with the reason without them."""
import json
import os
import random
import shutil
import struct
import subprocess
import time
import zlib

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm import cli
from tinyengine_tvm.errors import TinyEngineError
from tinyengine_tvm.micro import baremetal, mlperf_host
from tinyengine_tvm.micro.model_desc import MlperfOptions, model_desc_source
from tinyengine_tvm.micro.project import SHARED_SOURCES, create_project
from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.runtime import qemu
from tinyengine_tvm.runtime import client, emulator, firmware
from tinyengine_tvm.runtime import protocol as proto
from tinyengine_tvm.testing.faults import FaultSpec, FaultyTransport
from tinyengine_tvm.runtime.host import HostModel
from tinyengine_tvm.testing import random_inputs, tflm_run

MISSING = firmware.missing_tools()
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not found: run scripts/install_arm_toolchain.sh (as root) "
                          "to run the serial-link tests on QEMU")
HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return str(tmp_path_factory.mktemp("serial-build"))


@pytest.fixture(scope="module")
def default(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("serial-projects") / "default")
    compiled = te.compile(str(default_model_path()))
    compiled.export(out)
    return out, compiled.metadata, open(default_model_path(), "rb").read()


def _inputs(meta, seed):
    return {d["name"]: a for d, a in zip(meta["inputs"], random_inputs(meta["inputs"], seed))}


def _elf(project, build, board="mps2-an500", **kw):
    return baremetal.build_serial_firmware(project, board, build, **kw)


# --------------------------------------------------------------------------- the Zephyr app's C, bare-metal
def test_zephyr_app_sources_build_with_werror_and_match_tflm(default, build, tmp_path, tflm, monkeypatch):
    """The generated app's protocol sources and descriptor are what the
    bare-metal build compiles (-Wall -Wextra -Werror); run on QEMU through the
    UART they give TFLM's outputs bit for bit."""
    project, meta, model_bytes = default
    app = str(tmp_path / "app")
    create_project(app, project, "zephyr", {"board": "nucleo_f746zg"}, measure_build_dir=build)
    assert open(os.path.join(app, "src", "te_model_desc.c")).read() == model_desc_source(meta)
    # Build from the app's own copies of the shared sources.
    fw = str(tmp_path / "fw")
    shutil.copytree(firmware.firmware_dir(), fw)
    for rel in SHARED_SOURCES:
        shutil.copyfile(os.path.join(app, "tinyengine", rel), os.path.join(fw, rel))
    monkeypatch.setenv("TINYENGINE_FIRMWARE_DIR", fw)
    elf = _elf(os.path.join(app, "model"), str(tmp_path / "b"))
    with emulator.QemuSerial(elf, "mps2-an500", timeout=5) as q:
        model = client.DeviceModel(q.client, meta)
        for seed in range(2):
            x = _inputs(meta, seed)
            out, rep = model.run(x, number=2)
            want = tflm_run(model_bytes, [x[d["name"]] for d in meta["inputs"]])
            for d, w in zip(meta["outputs"], want):
                np.testing.assert_array_equal(out[d["name"]], w.reshape(d["shape"]))
    assert rep["unit"] == "instructions" and rep["instructions"] > 1_000_000 and rep["stack_peak_bytes"] > 0


def test_zephyr_main_compiles_against_api_stubs(tmp_path):
    """zephyr_app/src/main.c with -Werror against declarations of the Zephyr
    APIs it uses (tests/zephyr_stubs): catches mistakes in our code, not in
    Zephyr's headers (Zephyr itself cannot be built here)."""
    p = firmware.gcc_prefix()
    root = os.path.dirname(HERE)
    for mlperf, energy in ((0, 0), (1, 0), (1, 1)):
        cmd = [p + "gcc", "-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16", "-std=gnu11", "-O2",
               "-Wall", "-Wextra", "-Werror", "-fsyntax-only", "-I", os.path.join(HERE, "zephyr_stubs"),
               "-I", os.path.join(root, "firmware", "include"), '-DCONFIG_BOARD="nucleo_f746zg"',
               f"-DTE_MLPERF={mlperf}", f"-DTE_MLPERF_ENERGY={energy}", "-DTE_PROTO_MAX_PAYLOAD=1024u",
               os.path.join(root, "zephyr_app", "src", "main.c")]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------- correct results
@pytest.mark.parametrize("board,link", [("mps2-an500", "tcp"), ("mps2-an386", "pty"), ("mps3-an547", "tcp")])
def test_uart_results_match_host(default, build, board, link):
    project, meta, _ = default
    host = HostModel(project, build_dir=os.path.join(build, "host"))
    with emulator.QemuSerial(_elf(project, build, board), board, link=link) as q:
        model = client.DeviceModel(q.client, meta)
        for seed in range(3):
            x = _inputs(meta, seed)
            out, rep = model.run(x, number=3, repeat=2)
            for k, v in host.run(x).items():
                np.testing.assert_array_equal(out[k], v)
    assert rep["board"] == board and rep["platform"] == "bare-metal"
    s = rep["instructions_summary"]
    assert s["min"] <= s["median"] <= s["max"] and s["max"] - s["min"] < 64  # deterministic under -icount
    assert rep["stack_peak_bytes"] < rep["stack_size_bytes"]


def test_uart_count_matches_semihosting_runner(default, build):
    """Same model, same emulator: the UART server's count of <name>_invoke is
    the semihosting runner's count of <name>_run less its two copies."""
    project, meta, _ = default
    x = _inputs(meta, 0)
    _, semi = qemu.run_on_qemu(project, x, "mps2-an500", build)
    with emulator.QemuSerial(_elf(project, build), "mps2-an500") as q:
        _, rep = client.DeviceModel(q.client, meta).run(x)
    assert 0 < semi["instructions"] - rep["instructions"] < 5000


def test_tvmc_run_device_qemu_over_uart(default, tmp_path, capsys):
    project, meta, _ = default
    x = _inputs(meta, 7)
    np.savez(tmp_path / "in.npz", **x)
    assert cli.main(["run", project, "--inputs", str(tmp_path / "in.npz"), "--outputs", str(tmp_path / "h.npz")]) == 0
    for link in ("tcp", "pty"):
        assert cli.main(["run", project, "--device=qemu", "--qemu-link", link, "--inputs", str(tmp_path / "in.npz"),
                         "--outputs", str(tmp_path / f"{link}.npz"), "--number", "2", "--repeat", "3",
                         "--print-time", "--report", str(tmp_path / "r.json")]) == 0
        text = capsys.readouterr().out
        assert "instructions per inference" in text and "3 repeats of 2 inferences" in text
        for k in np.load(tmp_path / "h.npz"):
            np.testing.assert_array_equal(np.load(tmp_path / "h.npz")[k], np.load(tmp_path / f"{link}.npz")[k])
        rep = json.load(open(tmp_path / "r.json"))
        for key in ("instructions", "stack_peak_bytes", "flash_bytes", "sram_bytes"):
            assert rep[key] > 0


def test_tvmc_run_device_serial_on_a_pty(default, build, capsys):
    """--device=serial through pyserial, on QEMU's UART exposed as a pseudo-terminal (a stand-in board)."""
    project, meta, _ = default
    with emulator.QemuSerial(_elf(project, build), "mps2-an500", link="pty") as q:
        port = q.pty
        q.transport.close()  # let tvmc open the port, as it would a board's
        assert cli.main(["run", project, "--device=serial", "--port", port, "--baud", "115200", "--number", "2",
                         "--print-time", "--print-top", "1"]) == 0
    text = capsys.readouterr().out
    assert "instructions per inference" in text and "top-1" in text


# --------------------------------------------------------------------------- protocol rules on the C device
def test_device_side_checks(default, build):
    project, meta, _ = default
    with emulator.QemuSerial(_elf(project, build), "mps2-an500", timeout=3) as q:
        c = q.client
        info = c.hello()
        assert (info.model, info.unit_name, info.counter_hz, info.icount_shift) == \
               (meta["model"], "instructions", 25_000_000, 6)
        assert c.echo(bytes(range(200))) == bytes(range(200))
        with pytest.raises(proto.DeviceError, match="not ready"):
            c.run(1, 0)
        nbytes = 3072
        c.write_input(0, bytes(nbytes))
        with pytest.raises(proto.DeviceError, match="input CRC mismatch"):
            c.run(1, zlib.crc32(b"x"))
        with pytest.raises(proto.DeviceError, match="bad argument"):
            c.request(proto.CMD_WRITE_INPUT, struct.pack("<BI", 3, 0) + b"x")
        with pytest.raises(proto.DeviceError, match="bad argument"):
            c.run(0, 0)
        with pytest.raises(proto.DeviceError, match="unknown command"):
            c.request(0x5E)
        # A payload longer than the device takes: refused at once (the header is checked first).
        q.transport.write(proto.encode_frame(proto.CMD_ECHO, 200, bytes(info.max_payload + 1)))
        with pytest.raises(proto.DeviceError, match="bad length"):
            c._await(proto.CMD_ECHO, 200, 3.0, None)
        # A frame cut short: the device gives up on it and says so.
        q.transport.write(proto.encode_frame(proto.CMD_ECHO, 201, bytes(100))[:60])
        with pytest.raises(proto.DeviceError, match="frame timeout"):
            c._await(proto.CMD_ECHO, 201, 5.0, None)
        # Garbage, including false sync bytes, then normal service.
        rng = random.Random(3)
        q.transport.write(bytes(rng.getrandbits(8) for _ in range(3000)) + b"\xa5\x5a\xa5")
        c._flush()
        c.write_input(0, bytes(nbytes))
        stats = c.run(2, zlib.crc32(bytes(nbytes)))
        assert stats.count == 2 and stats.min <= stats.max
        assert c.timings().output_crc == stats.output_crc
        # RESET: the device reboots (BOOT) and has forgotten its inputs.
        assert c.reset().model == meta["model"]
        with pytest.raises(proto.DeviceError, match="not ready"):
            c.run(1, zlib.crc32(bytes(nbytes)))


def test_load_input_reads_a_host_file_like_write_input(default, build, tmp_path):
    """LOAD_INPUT (semihosting): the firmware says it reads host files, and an input read from one
    runs exactly like the same bytes sent over the UART (same outputs, same count); a file it cannot
    use is refused and leaves the input unloaded."""
    project, meta, _ = default
    x = _inputs(meta, 4)
    blob = b"".join(np.ascontiguousarray(a).tobytes() for a in x.values())
    with emulator.QemuSerial(_elf(project, build), "mps2-an500", timeout=3) as q:
        c = q.client
        assert c.hello().host_files
        c.write_input(0, blob)
        over_uart = c.run(2, zlib.crc32(blob))
        (tmp_path / "in.bin").write_bytes(blob)
        assert c.load_input(0, str(tmp_path / "in.bin")) == len(blob)
        from_file = c.run(2, zlib.crc32(blob))
        assert from_file.output_crc == over_uart.output_crc
        assert abs(from_file.mean - over_uart.mean) < 64  # the counter's granularity, as between repeats
        (tmp_path / "short.bin").write_bytes(blob[:-1])
        for bad in (tmp_path / "short.bin", tmp_path / "missing.bin"):
            with pytest.raises(proto.DeviceError, match="cannot read the input"):
                c.load_input(0, str(bad))
            with pytest.raises(proto.DeviceError, match="not ready"):
                c.run(1, zlib.crc32(blob))
        with pytest.raises(proto.DeviceError, match="no such input"):
            c.load_input(5, str(tmp_path / "in.bin"))
        with pytest.raises(TinyEngineError, match="path too long"):
            c.load_input(0, "/" + "x" * 300)


def test_qemu_runner_loads_inputs_from_files_and_removes_them(default, build):
    project, meta, _ = default
    host = HostModel(project, build_dir=os.path.join(build, "host"))
    from tinyengine_tvm.runtime.device import QemuUartRunner

    runner = QemuUartRunner(project, "mps2-an500", build)
    try:
        where = runner.model.input_dir
        assert where and os.path.isdir(where)
        x = _inputs(meta, 5)
        out, rep = runner.run(x)
        assert os.listdir(where) == ["input_0.bin"]
        for k, v in host.run(x).items():
            np.testing.assert_array_equal(out[k], v)
    finally:
        runner.close()
    assert not os.path.exists(where)
    assert [p["phase"] for p in runner.open_phases] == ["build", "boot"]


def test_noisy_link_on_qemu_gives_exact_results(default, build):
    project, meta, _ = default
    host = HostModel(project, build_dir=os.path.join(build, "host"))
    spec = FaultSpec(drop=3e-4, flip=3e-4, garbage=3e-4)
    wrap = lambda t: FaultyTransport(t, to_device=spec, from_device=spec, seed=11)  # noqa: E731
    with emulator.QemuSerial(_elf(project, build), "mps2-an500", timeout=0.5, retries=8, wrap=wrap) as q:
        model = client.DeviceModel(q.client, meta)
        for seed in range(4):
            x = _inputs(meta, seed)
            out, rep = model.run(x, number=2)
            for k, v in host.run(x).items():
                np.testing.assert_array_equal(out[k], v)
        counts = q.transport.counts
    assert counts["dropped"] + counts["flipped"] + counts["garbage"] > 0
    assert rep["link"]["resends"] > 0


# --------------------------------------------------------------------------- misbehaving devices
def test_device_that_stops_answering(default, build):
    project, meta, _ = default
    elf = _elf(project, build, extra_cflags=["-DTE_TEST_HANG_IN_RUN"])
    with emulator.QemuSerial(elf, "mps2-an500", timeout=0.5, retries=1) as q:
        model = client.DeviceModel(q.client, meta)
        t0 = time.monotonic()
        with pytest.raises(proto.LinkError, match="no valid answer to RUN.*device hangs"):
            model.run(_inputs(meta, 0))
        assert time.monotonic() - t0 < 10


def test_device_that_crashes(default, build):
    project, meta, _ = default
    elf = _elf(project, build, extra_cflags=["-DTE_TEST_FAULT_IN_RUN"])
    with emulator.QemuSerial(elf, "mps2-an386", timeout=2) as q:
        model = client.DeviceModel(q.client, meta)
        with pytest.raises(proto.DeviceGone, match=r"status 100 \(UsageFault\)(.|\n)*UNDEFINSTR"):
            model.run(_inputs(meta, 0))


def test_device_that_resets(default, build):
    project, meta, _ = default
    elf = _elf(project, build, extra_cflags=["-DTE_TEST_RESET_IN_RUN"])
    with emulator.QemuSerial(elf, "mps2-an500", timeout=2) as q:
        model = client.DeviceModel(q.client, meta)
        with pytest.raises(proto.DeviceReset, match="reset twice"):
            model.run(_inputs(meta, 0))


def test_wrong_firmware_is_refused(default, build, tmp_path):
    project, meta, _ = default
    other = {**meta, "inputs": [{**meta["inputs"][0], "scale": 0.5}]}
    with emulator.QemuSerial(_elf(project, build), "mps2-an500") as q:
        with pytest.raises(TinyEngineError, match="does not run this project's model"):
            client.DeviceModel(q.client, other)


# --------------------------------------------------------------------------- MLPerf Tiny
@pytest.fixture(scope="module")
def mlperf_ic(default, build):
    project, meta, _ = default
    opts = MlperfOptions.create("ic01")
    link = emulator.QemuSerial(_elf(project, build, mlperf=opts), "mps2-an500", expect_boot=False, timeout=20)
    dut = mlperf_host.EembcDut(link.transport, 20)
    boot = dut.drain()
    yield dut, meta, opts, boot, project, build
    link.close()


def test_mlperf_boot_name_profile(mlperf_ic):
    dut, meta, opts, boot, _, _ = mlperf_ic
    assert boot[0] == "m-timestamp-mode-performance" and boot[1].startswith("m-lap-us-")
    assert boot[-2:] == ["m-init-done", "m-ready"]
    assert dut.name() == "tinyengine-tvm"
    assert dut.profile() == ("ULPMark for tinyML Firmware V0.0.1", "ic01")


def test_mlperf_accuracy_matches_host(mlperf_ic):
    dut, meta, opts, _, project, build = mlperf_ic
    host = HostModel(project, build_dir=os.path.join(build, "host"))
    samples = [mlperf_host.db_bytes(meta, _inputs(meta, s), opts) for s in range(3)]
    res = mlperf_host.accuracy(dut, meta, samples, opts, host.run)
    assert res["exact_matches"] == 3, res["rows"]


def test_mlperf_performance_windows(mlperf_ic):
    dut, meta, opts, _, _, _ = mlperf_ic
    data = mlperf_host.db_bytes(meta, _inputs(meta, 0), opts)
    res = mlperf_host.performance(dut, data, iterations=4, warmups=1, loops=2)
    w = [x["elapsed_us"] for x in res["windows"]]
    assert abs(w[0] - w[1]) <= 50 and res["median_throughput"] > 0  # -icount: nearly identical
    # 4 inferences of virtual time: about 4 x instructions x 64 ns.
    assert 4 * 5e6 * 64e-3 < w[0] < 4 * 2e7 * 64e-3


def test_mlperf_errors_and_garbage(mlperf_ic):
    dut, meta, opts, _, _, _ = mlperf_ic
    assert dut.command("bogus 1 2")[0] == "e-[Unknown command: bogus]"
    # The reference DUT's messages (docs/serial_protocol.md), its 27,648-byte buffer.
    assert dut.command("db load 999999") == ["Supplied buffer size 999999 exceeds maximum of 27648"]
    assert dut.command("db load 4") == ["m-[Expecting 4 bytes]"]
    assert dut.command("db 123") == ["e-[Insufficent number of hex digits]"]
    assert dut.command("db zz00") == ["e-[Invalid hex digit 'zz']"]
    assert dut.command("db 01020304") == ["m-load-done"]
    assert dut.command("db print") == ["m-buffer-01-02-03-04"]
    lines = dut.command("infer 1 0")
    assert lines[0] == "Input db has 4 elemented, expected 3072" and lines[-1].startswith("m-results-[")
    assert dut.command("infer 0")[0] == "e-[Inference iterations must be >0]"
    assert dut.command("x" * 500) == ["e-[Command too long]"]
    dut.transport.write(b"\r\n\0")  # line noise between commands is ignored
    assert dut.name() == "tinyengine-tvm"


@pytest.mark.parametrize("key,version,inputs", [("kws_ref_model", "kws01", "kws_inputs_int8.npy"),
                                                ("ad01_int8", "ad01", "ad_dcase01_hist_float32.npy")])
def test_mlperf_reference_models_match_tflm(key, version, inputs, shared_dir, build, tmp_path, tflm):
    """MLPerf Tiny's own models and test inputs: the DUT's results equal TFLM's, formatted alike."""
    path = os.path.join(shared_dir, f"{key}.tflite")
    project = str(tmp_path / key)
    compiled = te.compile(path)
    compiled.export(project)
    meta = compiled.metadata
    opts = MlperfOptions.create(version)
    model = open(path, "rb").read()

    def reference(x):
        outs = tflm_run(model, [x[d["name"]] for d in meta["inputs"]])
        return {d["name"]: o.reshape(d["shape"]) for d, o in zip(meta["outputs"], outs)}

    samples = mlperf_host._samples(meta, opts, os.path.join(shared_dir, "test_inputs", inputs), 3, 0)
    with emulator.QemuSerial(_elf(project, build, mlperf=opts), "mps2-an500", expect_boot=False, timeout=30) as q:
        dut = mlperf_host.EembcDut(q.transport, 30)
        dut.drain()
        res = mlperf_host.accuracy(dut, meta, samples, opts, reference)
    assert res["exact_matches"] == len(samples) > 0, res["rows"]


def test_mlperf_host_command_line(default, capsys):
    project, _, _ = default
    assert mlperf_host.main(["--qemu", project, "--mlperf-model", "kws01", "--mode", "a", "--count", "2"]) == 0
    assert "2/2 results identical" in capsys.readouterr().out
