"""Per-layer profiling (``tvmc run --profile``): the marks the generated C gets,
the host harness, the PROFILE command of the firmware on QEMU, and the table.

The QEMU tests need arm-none-eabi-gcc and qemu-system-arm (skipped, with the
reason, without them)."""
import json
import os
import re

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm import cli
from tinyengine_tvm.errors import TinyEngineError
from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.runtime import firmware
from tinyengine_tvm.runtime.host import HostRunner
from tinyengine_tvm.runtime.profile import StepProfile
from tinyengine_tvm.testing import random_inputs

MISSING = firmware.missing_tools()
needs_qemu = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not found: run "
                                                      "scripts/install_arm_toolchain.sh for the QEMU profile tests")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The default CNN (patch-based: its steps carry patch names), compiled."""
    out = str(tmp_path_factory.mktemp("profile") / "default")
    te.compile(str(default_model_path())).export(out)
    return out


def _meta(project):
    with open(os.path.join(project, "metadata.json")) as f:
        return json.load(f)


def test_generated_c_marks_every_step_once(project):
    meta = _meta(project)
    name = meta["model"]
    src = open(os.path.join(project, "src", f"{name}.c")).read()
    marks = [int(m) for m in re.findall(r"TE_PROFILE_MARK\((\d+)u\);", src)]
    n = len(meta["ops"])
    # Before every step, and once after the last: the step counters cover invoke() whole.
    assert marks == list(range(n + 1))
    assert f"#define {name.upper()}_NUM_STEPS {n}" in open(os.path.join(project, "include", f"{name}.h")).read()
    # Without TE_PROFILE the marks are nothing at all.
    assert "#define TE_PROFILE_MARK(step) ((void)0)" in src


def test_host_profile_names_every_layer_and_leaves_outputs_alone(project, tmp_path):
    meta = _meta(project)
    xs = random_inputs(meta["inputs"], 3)
    plain = HostRunner(project, str(tmp_path / "plain"))
    expected, _ = plain.run(xs)
    runner = HostRunner(project, str(tmp_path / "prof"), profile=True)
    got, _ = runner.run(xs, number=3, repeat=2)
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k])
    p = runner.profile()
    assert p.unit == "ns" and p.inferences == 3 and p.runner == "host"
    assert [s.name for s in p.steps] == [o["name"] for o in meta["ops"]]
    assert [s.kernel for s in p.steps] == [o["kernel"] for o in meta["ops"]]
    assert any("[patch" in s.name for s in p.steps)
    assert p.steps_total > 0 and abs(sum(s.share for s in p.steps) - 1) < 1e-9
    # The convolutions, which do nearly all the MACs, take most of the time.
    conv = sum(s.cost for s in p.steps if s.op == "CONV_2D")
    assert conv > 0.5 * p.steps_total
    with pytest.raises(TinyEngineError, match="open the host runner with profile=True"):
        plain.profile()


def test_table_and_json_from_counters():
    meta = {"model": "m", "ops": [{"name": "a", "type": "CONV_2D", "kernel": "te_conv2d_s8", "macs": 1000},
                                  {"name": "b/long/" * 10 + "x", "type": "ADD", "kernel": "te_add_s8", "macs": 0},
                                  {"name": "c", "type": "RESHAPE", "kernel": "te_view", "macs": 0}]}
    p = StepProfile.from_counters(meta, [8000, 2000, 0], inferences=2, unit="instructions", runner="qemu",
                                  mark_cost=30)
    assert [s.cost for s in p.steps] == [4000, 1000, 0] and p.steps[0].share == 0.8
    assert p.steps[0].macs_per_unit == 0.25 and p.steps[2].macs_per_unit is None
    p.profiled_total, p.plain_total = 5100.0, 5000.0
    table = p.format_table()
    assert "0.250" in table and "80.0%" in table and "+100 instr (+2.00%)" in table
    assert "each mark's own cost, 30 instr" in table
    assert "(2 cheaper steps not shown" in p.format_table(top=1)
    js = p.to_json()
    assert js["overhead"] == 100 and js["steps"][0]["macs_per_unit"] == 0.25 and js["steps_total"] == 5000
    with pytest.raises(TinyEngineError, match="the model's metadata 3"):
        StepProfile.from_counters(meta, [1, 2], inferences=1, unit="ns", runner="host", mark_cost=0)


@needs_qemu
def test_qemu_profile_adds_up_to_the_plain_build(project, tmp_path):
    """Under QEMU -icount the counts are exact: the steps add up to the build without
    marks (the marks' own work subtracted) and the outputs are the same."""
    from tinyengine_tvm.runtime.device import QemuUartRunner

    meta = _meta(project)
    xs = random_inputs(meta["inputs"], 5)
    build = str(tmp_path / "build")
    with QemuUartRunner(project, "mps2-an500", build, profile=True) as runner:
        got, report = runner.run(xs, number=2)
        p = runner.profile()
    with QemuUartRunner(project, "mps2-an500", build) as plain:
        expected, plain_report = plain.run(xs, number=2)
        with pytest.raises(TinyEngineError, match="not a profile build"):
            plain.profile()
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k])
    assert p.unit == "instructions" and p.inferences == 2 and 0 < p.mark_cost < 200
    assert [s.name for s in p.steps] == [o["name"] for o in meta["ops"]]
    plain_total = plain_report["instructions"]
    assert abs(p.steps_total - plain_total) <= 0.001 * plain_total, (p.steps_total, plain_total)
    # The marks cost the profile build under 1%.
    assert plain_total < report["instructions"] < 1.01 * plain_total
    # A step that calls no kernel (an arena buffer the patch stages fill) costs nothing.
    buffers = [s for s in p.steps if s.kernel == "te_buffer"]
    assert buffers and all(s.cost <= 2 for s in buffers)  # the marks, to an instruction


@needs_qemu
def test_tvmc_run_profile_prints_the_table_and_writes_json(project, tmp_path, capsys):
    out = tmp_path / "profile.json"
    assert cli.main(["run", project, "--device=qemu", "--profile-json", str(out), "--profile-top", "5",
                     "--number", "1", "--seed", "2"]) == 0
    text = capsys.readouterr().out
    assert "Per-layer profile of default_mobilenet_int8 on mps2-an500 (bare-metal): instr per inference" in text
    assert "MACs/instr" in text and "profiling overhead: the profile build takes" in text
    js = json.load(open(out))
    assert js["generator"].startswith("tinyengine-tvm") and len(js["steps"]) == len(_meta(project)["ops"])
    assert js["overhead"] > 0 and js["plain_total"] > 0
    # A file of somebody else's is never overwritten; nothing is run.
    other = tmp_path / "mine.json"
    other.write_text('{"mine": 1}')
    assert cli.main(["run", project, "--device=qemu", "--profile-json", str(other)]) == 2
    assert other.read_text() == '{"mine": 1}'
    assert cli.main(["run", project, "--device=qemu", "--qemu-link", "semihosting", "--profile"]) == 2
    assert "not semihosting" in capsys.readouterr().err


@needs_qemu
def test_tvmc_run_profile_on_a_board_over_serial(project, tmp_path, capsys):
    """--device=serial --profile against a profile build on QEMU's UART as a pty (a stand-in board): the
    table comes from the flashed build, the overhead is said not to be measured; a plain build is refused."""
    from tinyengine_tvm.micro.baremetal import build_serial_firmware
    from tinyengine_tvm.runtime.emulator import QemuSerial

    build = str(tmp_path / "build")
    for profile in (True, False):
        elf = build_serial_firmware(project, "mps2-an500", build, profile=profile)
        with QemuSerial(elf, "mps2-an500", link="pty") as q:
            port = q.pty
            q.transport.close()  # tvmc opens the port, as it would a board's
            rc = cli.main(["run", project, "--device=serial", "--port", port, "--profile", "--profile-top", "2"])
        captured = capsys.readouterr()
        if profile:
            assert rc == 0
            assert "Per-layer profile of default_mobilenet_int8 on mps2-an500 (bare-metal)" in captured.out
            assert "overhead not measured: the board runs the profile build only" in captured.out
        else:
            assert rc == 2 and "not a profile build" in captured.err
