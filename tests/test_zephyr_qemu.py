"""The Zephyr application, built with a real Zephyr 4.3.0 and run in QEMU over the
benchmark protocol (``tvmc run --device=qemu --firmware=zephyr``), bit-exact with TFLM.

Needs the offline Zephyr workspace of ../shared/zephyr (set up with its
setup.sh, or $TINYENGINE_ZEPHYR_WORKSPACE), qemu-system-arm and
arm-none-eabi-gcc; skipped with the reason without them. Builds are cached
by content (``$TINYENGINE_ZEPHYR_CACHE``, default ~/.cache/tinyengine-tvm/zephyr-builds):
each board's Zephyr is compiled once and shared by the models, which only
recompile their own sources.
"""
import json
import os
import shutil

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm import cli
from tinyengine_tvm.micro.zephyr_boards import ZEPHYR_BOARDS
from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.testing import assert_matches_tflm, random_inputs, shipped_inputs

#: Cortex-M4, M7 and M55.
BOARDS = ["mps2/an386", "mps2/an500", "mps3/corstone300/an547"]
MISSING = [t for t in ("qemu-system-arm", "arm-none-eabi-gcc") if shutil.which(t) is None]
needs_qemu = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not found: the Zephyr-in-QEMU "
                                                     "tests need them")


@pytest.fixture(scope="module")
def workspace(zephyr_workspace):
    return zephyr_workspace


def _compiled(path, out):
    c = te.compile(str(path))
    c.export(out)
    return c


@pytest.fixture(scope="module")
def models(tmp_path_factory, shared_dir):
    """(compiled directory, .tflite bytes, input cases) of kws_ref_model and the patched default CNN."""
    root = tmp_path_factory.mktemp("zephyr-models")
    out = []
    kws_path = os.path.join(shared_dir, "kws_ref_model.tflite")
    if not os.path.isfile(kws_path):
        pytest.skip(f"{kws_path} is absent")
    for path in (kws_path, str(default_model_path())):
        name = os.path.splitext(os.path.basename(path))[0]
        c = _compiled(path, str(root / name))
        desc = c.metadata["inputs"]
        cases = [random_inputs(desc, 7)]
        if name == "kws_ref_model":
            cases += [shipped_inputs(name, desc[0])[:1]]
        else:  # the point of this model: patch-based inference is applied
            patch = next(p for p in c.metadata["passes"] if p["name"] == "PatchBasedInference")
            assert patch["applied"] and patch["stages"], patch
        out.append((str(root / name), open(path, "rb").read(), cases))
    return out


@needs_qemu
@pytest.mark.parametrize("board", BOARDS)
def test_bit_exact_with_tflm_on_zephyr_in_qemu(board, models, workspace, tflm):
    from tinyengine_tvm.micro.zephyr_qemu import UNIT, ZephyrQemuRunner

    for project, model, cases in models:
        with ZephyrQemuRunner(project, board, workspace=workspace) as runner:
            reports = []

            def run(xs):
                outputs, report = runner.run(xs, number=2, repeat=2)
                reports.append(report)
                return list(outputs.values())

            assert_matches_tflm(None, model, cases, run=run)
            r = reports[-1]
            # Timings are the Zephyr cycle counter's ticks, said so, never "cycles" or ms.
            assert r["unit"] == UNIT and r[UNIT] > 0 and "not real cycles" in r["timing_note"]
            assert not any(k.startswith(("cycles", "ms_")) for k in r) and r["platform"].startswith("zephyr 4.3")
            assert r["zephyr_board"] == board and r["board"] == board and r["stack_peak_bytes"] > 0
            assert r["link"]["resends"] == 0
            # The fit create-project predicted against the real ELF: never below it, within 2 KiB.
            info = runner.build_info
            req, sizes = info["project"]["requirements"], info["sizes"]
            assert not req["zephyr_allowances_are_estimates"]
            for kind in ("flash", "ram"):
                real = sizes[kind]["total"]
                assert real <= req[kind]["total"] <= real + 2048, (board, kind, real, req[kind])


@needs_qemu
def test_tvmc_run_with_the_zephyr_firmware(models, workspace, tmp_path, capsys):
    project, _, _ = models[1]
    out = str(tmp_path / "out.npz")
    args = ["run", project, "--device=qemu", "--firmware=zephyr", "--board", "mps2-an500", "--zephyr-workspace",
            workspace, "--print-time", "--outputs", out, "--seed", "3"]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "zephyr_ticks per inference" in text and "not real cycles" in text
    got = dict(np.load(out))
    from tinyengine_tvm.runtime.opener import open_runner
    from tinyengine_tvm.runtime.project import random_inputs as seeded

    with open_runner(project, "host", build_dir=str(tmp_path / "host")) as host:
        expected, _ = host.run(seeded(host.meta["inputs"], 3))
    assert sorted(got) == sorted(expected)
    for k in got:
        np.testing.assert_array_equal(got[k], expected[k])


def test_zephyr_run_options_are_checked_first(tmp_path, monkeypatch, capsys):
    """Bad combinations exit with 2 before any build, and write nothing."""
    project = str(tmp_path / "p")
    _compiled(default_model_path(), project)
    out = tmp_path / "o.npz"
    base = ["run", project, "--outputs", str(out)]
    for extra, message in (
            (["--firmware=zephyr"], "needs --device=qemu"),
            (["--device=qemu", "--firmware=zephyr", "--qemu-link", "semihosting"], "not semihosting"),
            (["--device=qemu", "--zephyr-workspace", str(tmp_path)], "is for --firmware=zephyr"),
            (["--device=qemu", "--firmware=zephyr", "--board", "nucleo_f746zg"], "QEMU does not emulate"),
            (["--device=qemu", "--firmware=zephyr", "--zephyr-workspace", str(tmp_path / "none")],
             "no such directory"),
            (["--device=qemu", "--firmware=zephyr", "--zephyr-workspace", str(tmp_path)],
             "holds neither env.sh nor zephyr/")):
        assert cli.main(base + extra) == 2, extra
        assert message in capsys.readouterr().err, extra
    monkeypatch.delenv("ZEPHYR_BASE", raising=False)
    assert cli.main(base + ["--device=qemu", "--firmware=zephyr"]) == 2
    assert "ZEPHYR_BASE is not set and no --zephyr-workspace" in capsys.readouterr().err
    assert not out.exists()
    assert all(b in ZEPHYR_BOARDS and ZEPHYR_BOARDS[b].emulated for b in BOARDS)


def test_ticks_are_never_called_cycles():
    from tinyengine_tvm.micro.zephyr_qemu import UNIT, relabel_ticks

    device = {"unit": "cycles", "cycles": 120, "cycles_summary": {"mean": 120.0}, "cycles_per_repeat": [120.0],
              "ms_summary": {"mean": 1.0}, "ms_per_repeat": [1.0], "clock_hz": 25_000_000, "stack_peak_bytes": 8}
    r = relabel_ticks(device)
    assert r["unit"] == UNIT and r[UNIT] == 120 and r[f"{UNIT}_summary"] == {"mean": 120.0}
    assert not any(k.startswith(("cycles", "ms_")) or k == "clock_hz" for k in r) and r["stack_peak_bytes"] == 8
    assert "not real cycles" in r["timing_note"] and device["unit"] == "cycles"  # the input is left alone


def test_build_tree_sync_rewrites_only_what_changed(tmp_path):
    """The per-board build directory keeps unchanged files' timestamps (ninja rebuilds only the rest)."""
    from tinyengine_tvm.micro.zephyr_build import _sync_tree

    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "model").mkdir(parents=True)
    (src / "same.c").write_text("a")
    (src / "model" / "m.c").write_text("new")
    (dst / "model" / "old").mkdir(parents=True)
    (dst / "same.c").write_text("a")
    (dst / "model" / "m.c").write_text("old")
    (dst / "model" / "old" / "gone.c").write_text("x")
    os.utime(dst / "same.c", (1, 1))
    _sync_tree(str(src), str(dst))
    assert (dst / "same.c").stat().st_mtime == 1 and (dst / "model" / "m.c").read_text() == "new"
    assert not (dst / "model" / "old").exists()


@needs_qemu
def test_profile_build_of_the_zephyr_app(models, workspace, tmp_path, capsys):
    """tvmc run --profile with the Zephyr firmware: per-step Zephyr ticks, the same outputs."""
    project, _, _ = models[1]
    out = tmp_path / "p.json"
    args = ["run", project, "--device=qemu", "--firmware=zephyr", "--board", "mps2-an500", "--zephyr-workspace",
            workspace, "--profile-json", str(out), "--profile-top", "3", "--seed", "4", "--outputs",
            str(tmp_path / "o.npz")]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "ticks per inference" in text and "not real cycles" in text and "profiling overhead" in text
    js = json.load(open(out))
    assert js["unit"] == "zephyr_ticks" and js["steps_total"] > 0 and js["plain_total"] > 0
    # Ticks are coarser than instructions: the steps add up to the plain build within 5%.
    assert abs(js["steps_total"] - js["plain_total"]) < 0.05 * js["plain_total"]
    got = dict(np.load(tmp_path / "o.npz"))
    from tinyengine_tvm.runtime.opener import open_runner
    from tinyengine_tvm.runtime.project import random_inputs as seeded

    with open_runner(project, "host", build_dir=str(tmp_path / "host")) as host:
        expected, _ = host.run(seeded(host.meta["inputs"], 4))
    for k in got:
        np.testing.assert_array_equal(got[k], expected[k])
