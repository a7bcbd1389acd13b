"""The tvmc command: compile to a directory or tarball, run on the host with npz I/O."""
import os
import subprocess
import sys

import numpy as np
import pytest

from tinyengine_tvm import cli
from tinyengine_tvm.modelgen.default_model import default_model_path

DEFAULT = str(default_model_path())


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("cli") / "out")
    assert cli.main(["compile", "--target=tinyengine", DEFAULT, "-o", out]) == 0
    return out


def test_compile_prints_report(tmp_path, capsys):
    assert cli.main(["compile", "--target=tinyengine", DEFAULT, "-o", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    for word in ("arena", "weights", "ops", "MACs", "CONV_2D"):
        assert word in text


def test_compile_lists_the_patch_stages(tmp_path, capsys):
    """First and last operator by the model's names, grid, extra MACs and halo cache bytes."""
    import json

    model = tmp_path / "m.tflite"
    from tinyengine_tvm.modelgen.zoo import ZOO

    model.write_bytes(ZOO["mcunet_vww"](resolution=48, width=0.35))
    out = tmp_path / "o"
    assert cli.main(["compile", str(model), "-o", str(out), "--int8-io", "--pass-config",
                     "PatchBasedInference.halo_cache=on"]) == 0
    text = capsys.readouterr().out
    stages = json.load(open(out / "metadata.json"))["passes"]
    stages = {p["name"]: p for p in stages}["PatchBasedInference"]["stages"]
    assert stages and all(st["halo_cache"] == "full" for st in stages)
    for st in stages:
        assert f"{st['grid'][0]}x{st['grid'][1]} patches (+{st['mac_overhead']:.1%} MACs, halo cache of full " \
               f"{st['halo_cache_bytes']:,} B)" in text
        assert st["first_op"][:20] in text


def test_list_operators_is_the_registry_and_the_readme_table(capsys):
    from tinyengine_tvm.frontend.tflite import supported_ops
    from tinyengine_tvm.operator_table import operator_table

    assert cli.main(["compile", "--list-operators"]) == 0
    text = capsys.readouterr().out
    assert text.strip() == operator_table()
    for op in supported_ops():
        assert f"| {op} |" in text
    assert "| SUB | int16 -> int16; int8 -> int8 | `te_sub_s16`, `te_sub_s8` |" in text
    assert "| QUANTIZE | float32 -> int16; float32 -> int8; int16 -> int16; int16 -> int8; int32 -> int16; int32 -> int8; int8 -> int16; int8 -> int8 |" in text
    readme = open(os.path.join(os.path.dirname(__file__), "..", "README.md")).read()
    table = readme.split("<!-- operators: begin -->\n")[1].split("\n<!-- operators: end -->")[0]
    assert table == operator_table(), "README's operator table is stale: paste `tvmc compile --list-operators`"
    assert cli.main(["compile"]) == 2 and "needs a model" in capsys.readouterr().err


def test_unknown_target_is_an_error(tmp_path, capsys):
    assert cli.main(["compile", "--target=llvm", DEFAULT, "-o", str(tmp_path / "o")]) == 2
    assert "unknown target" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_run_npz_roundtrip(project, tmp_path, capsys):
    import json

    meta = json.load(open(os.path.join(project, "metadata.json")))
    desc = meta["inputs"][0]
    x = np.random.default_rng(3).integers(-128, 128, size=desc["shape"], dtype=np.int8)
    np.savez(tmp_path / "in.npz", **{desc["name"]: x})
    assert cli.main(["run", project, "--device=host", "--inputs", str(tmp_path / "in.npz"),
                     "--outputs", str(tmp_path / "out.npz"), "--print-top", "3", "--print-time"]) == 0
    printed = capsys.readouterr().out
    assert "top-3" in printed and "execution time" in printed
    out = np.load(tmp_path / "out.npz")
    assert list(out.keys()) == [m["name"] for m in meta["outputs"]]
    # An unnamed single array is accepted for a one-input model.
    np.savez(tmp_path / "in2.npz", x)
    assert cli.main(["run", project, "--inputs", str(tmp_path / "in2.npz"), "--outputs", str(tmp_path / "out2.npz")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "out2.npz")[meta["outputs"][0]["name"]], out[meta["outputs"][0]["name"]])


def test_run_rejects_wrong_input(project, tmp_path, capsys):
    np.savez(tmp_path / "bad.npz", wrong=np.zeros((2, 2), np.int8), other=np.zeros(3, np.int8))
    assert cli.main(["run", project, "--inputs", str(tmp_path / "bad.npz")]) == 2
    assert "missing input" in capsys.readouterr().err


def test_tarball_and_module_entry_point(tmp_path):
    tar = str(tmp_path / "m.tar")
    env = dict(os.environ)
    subprocess.run([sys.executable, "-m", "tinyengine_tvm", "compile", "--target=tinyengine", DEFAULT, "-o", tar],
                   check=True, capture_output=True, env=env)
    proc = subprocess.run([sys.executable, "-m", "tinyengine_tvm", "run", tar, "--print-top", "1"],
                          check=True, capture_output=True, text=True, env=env)
    assert "top-1" in proc.stdout


def test_memory_flags(tmp_path, capsys):
    out = str(tmp_path / "o")
    plot = str(tmp_path / "mem.png")
    assert cli.main(["compile", DEFAULT, "-o", out, "--memory-plot", plot, "--disable-pass", "InplaceDepthwise",
                     "--pass-config", "MemoryAwareSchedule.max_states=100"]) == 0
    text = capsys.readouterr().out
    assert "peak at" in text and "InplaceDepthwise" not in text and "MemoryAwareSchedule" in text
    assert open(plot, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    import json

    arena = json.load(open(os.path.join(out, "metadata.json")))["memory"]["arena_bytes"]
    assert cli.main(["compile", DEFAULT, "-o", str(tmp_path / "small"), "--sram-budget", str(arena - 1)]) == 2
    err = capsys.readouterr().err
    assert "1 B over the SRAM budget" in err and "peak is at op" in err
    assert not (tmp_path / "small").exists()
    assert cli.main(["compile", DEFAULT, "-o", str(tmp_path / "x"), "--disable-pass", "NoSuchPass"]) == 2
    assert "unknown pass" in capsys.readouterr().err


def test_board_check_refuses_with_numbers(tmp_path, capsys):
    from tinyengine_tvm.errors import MemoryBudgetError
    from tinyengine_tvm.targets import get_board
    from tinyengine_tvm.targets.fit import check_fits
    import dataclasses

    import tinyengine_tvm as te

    meta = te.compile(DEFAULT).metadata
    small = dataclasses.replace(get_board("NUCLEO-F412ZG"), sram_bytes=10_000, ram_region_bytes=10_000,
                                flash_bytes=50_000)
    with pytest.raises(MemoryBudgetError) as err:
        check_fits(meta, small)
    msg = str(err.value)
    assert "SRAM" in msg and "B over the 10,000 B RAM region" in msg and "peak is at op" in msg
    assert "flash" in msg and "over the 50,000 B flash" in msg
    out = tmp_path / "o"
    assert cli.main(["compile", DEFAULT, "-o", str(out), "--target-tinyengine-board", "NUCLEO-F746ZG"]) == 0
    assert cli.main(["compile", DEFAULT, "-o", str(tmp_path / "x"), "--target-tinyengine-board", "NO-SUCH"]) == 2
    assert "NO-SUCH" in capsys.readouterr().err


def test_run_on_qemu_matches_host(project, tmp_path, capsys):
    from tinyengine_tvm.runtime.firmware import missing_tools

    if missing_tools():
        pytest.skip(f"Cortex-M tools missing: {missing_tools()} (bash scripts/install_arm_toolchain.sh)")
    import json

    meta = json.load(open(os.path.join(project, "metadata.json")))
    x = np.random.default_rng(5).integers(-128, 128, size=meta["inputs"][0]["shape"], dtype=np.int8)
    np.savez(tmp_path / "in.npz", x)
    assert cli.main(["run", project, "--inputs", str(tmp_path / "in.npz"), "--outputs", str(tmp_path / "host.npz")]) == 0
    assert cli.main(["run", project, "--device=qemu", "--board", "mps2-an386", "--inputs", str(tmp_path / "in.npz"),
                     "--outputs", str(tmp_path / "qemu.npz"), "--print-time", "--report", str(tmp_path / "r.json")]) == 0
    assert "instructions per inference" in capsys.readouterr().out
    name = meta["outputs"][0]["name"]
    np.testing.assert_array_equal(np.load(tmp_path / "host.npz")[name], np.load(tmp_path / "qemu.npz")[name])
    report = json.load(open(tmp_path / "r.json"))
    for key in ("instructions", "stack_peak_bytes", "flash_bytes", "sram_bytes"):
        assert report[key] > 0


def test_mcpu_selects_cortex_m_kernels(tmp_path, capsys):
    import json

    out = str(tmp_path / "m7")
    assert cli.main(["compile", DEFAULT, "-o", out, "--target-tinyengine-mcpu", "cortex-m7"]) == 0
    meta = json.load(open(os.path.join(out, "metadata.json")))
    assert any(op["kernel"].startswith("te_arm_") for op in meta["ops"])
    assert "kernel_selection" in meta
    # The same project still builds and runs on the host (plain-C fallback), equal to portable.
    portable = str(tmp_path / "portable")
    assert cli.main(["compile", DEFAULT, "-o", portable]) == 0
    x = np.random.default_rng(9).integers(-128, 128, size=meta["inputs"][0]["shape"], dtype=np.int8)
    np.savez(tmp_path / "in.npz", x)
    for proj, name in ((out, "a"), (portable, "b")):
        assert cli.main(["run", proj, "--inputs", str(tmp_path / "in.npz"), "--outputs", str(tmp_path / f"{name}.npz")]) == 0
    key = meta["outputs"][0]["name"]
    np.testing.assert_array_equal(np.load(tmp_path / "a.npz")[key], np.load(tmp_path / "b.npz")[key])
    assert cli.main(["compile", DEFAULT, "-o", str(tmp_path / "bad"), "--target-tinyengine-mcpu", "cortex-m7",
                     "--target-tinyengine-board", "NUCLEO-F412ZG"]) == 2
    assert "does not match" in capsys.readouterr().err


def test_keep_portable_arena_never_grows_the_arena(tmp_path):
    import tinyengine_tvm as te

    portable = te.compile(DEFAULT).metadata["memory"]["arena_bytes"]
    strict = te.compile(DEFAULT, core="cortex-m7", keep_portable_arena=True)
    assert strict.metadata["memory"]["arena_bytes"] <= portable
    assert any(op["kernel"].startswith("te_arm_") for op in strict.metadata["ops"])
