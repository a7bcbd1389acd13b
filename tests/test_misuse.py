"""Misused options and paths: a clear error with exit status 2, and no user file touched.

Each case snapshots the whole working folder (names, types, bytes) before the
command and compares after it, outside the output the command was allowed to write.
"""
import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from tinyengine_tvm import cli
from tinyengine_tvm.modelgen.default_model import default_model_path


def _snapshot(root, skip=()):
    """{relative path: ('dir',) | ('file', sha256)} of everything under root."""
    out = {}
    skip = {os.path.normpath(os.path.join(root, s)) for s in skip}
    for base, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if os.path.normpath(os.path.join(base, d)) not in skip]
        for d in dirs:
            out[os.path.relpath(os.path.join(base, d), root)] = ("dir",)
        for f in files:
            full = os.path.join(base, f)
            if os.path.normpath(full) in skip:
                continue
            with open(full, "rb") as fh:
                out[os.path.relpath(full, root)] = ("file", hashlib.sha256(fh.read()).hexdigest())
    return out


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A user's folder: the model among other files of theirs; cwd is this folder."""
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(default_model_path(), models / "m.tflite")
    (models / "notes.txt").write_text("my notes\n")
    (tmp_path / "data.bin").write_bytes(b"\x01\x02")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _fails_cleanly(work, capsys, argv, expect, skip=()):
    """Run tvmc; require exit status 2, an 'error:' naming ``expect``, no traceback
    and no change to any file under ``work``."""
    before = _snapshot(work, skip)
    rc = cli.main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert err.startswith("error: ") and expect in err, err
    assert "Traceback" not in err
    assert _snapshot(work, skip) == before
    return err


def _argparse_refuses(work, capsys, argv, expect):
    before = _snapshot(work)
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and expect in err, err
    assert _snapshot(work) == before


COMPILE = ["compile", "--target=tinyengine", "models/m.tflite"]


# ----------------------------------------------------------------- outputs of tvmc compile
def test_output_into_the_models_folder_is_refused(work, capsys):
    _fails_cleanly(work, capsys, COMPILE + ["-o", "models"], "contains 'models/m.tflite'")


def test_output_into_a_folder_of_user_files_is_refused(work, capsys):
    (work / "mine").mkdir()
    (work / "mine" / "main.c").write_text("int main(void) { return 0; }\n")
    _fails_cleanly(work, capsys, COMPILE + ["-o", "mine"], "not empty")


def test_output_dot_in_a_user_folder_is_refused(work, capsys, monkeypatch):
    _fails_cleanly(work, capsys, COMPILE + ["-o", "."], "contains 'models/m.tflite'")
    (work / "other").mkdir()
    (work / "other" / "a.txt").write_text("keep me\n")
    monkeypatch.chdir(work / "other")
    _fails_cleanly(work, capsys, ["compile", str(work / "models" / "m.tflite"), "-o", "."], "not empty")


def test_output_dot_in_an_empty_folder_writes_there(work, capsys, monkeypatch):
    empty = work / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    assert cli.main(["compile", str(work / "models" / "m.tflite"), "-o", "."]) == 0
    assert (empty / "metadata.json").is_file() and (empty / "src" / "m.c").is_file()
    assert not [p for p in os.listdir(empty) if p.startswith(".tinyengine")]


@pytest.mark.parametrize("output, expect", [
    ("data.bin", "exists and is not a directory"),
    ("data.bin/sub", "is a file, not a directory"),
    ("/proc/x", "cannot create"),
    ("", "the path is empty"),
    ("models/m.tflite", "exists and is not a directory"),
])
def test_output_paths_that_cannot_hold_a_project(work, capsys, output, expect):
    _fails_cleanly(work, capsys, COMPILE + ["-o", output], expect)


def test_a_previous_project_is_replaced_and_nothing_else(work, capsys):
    assert cli.main(COMPILE + ["-o", "out"]) == 0
    first = _snapshot(work / "out")
    (work / "out" / "build").mkdir()  # a host build tree grown by a previous run
    (work / "out" / "build" / "x.o").write_bytes(b"obj")
    before = _snapshot(work, skip=["out"])
    assert cli.main(COMPILE + ["-o", "out", "--disable-pass", "MemoryAwareSchedule"]) == 0
    assert _snapshot(work, skip=["out"]) == before
    assert set(_snapshot(work / "out")) == set(first)
    # A file of the user's inside the previous project: no longer replaceable.
    (work / "out" / "src" / "my_main.c").write_text("/* mine */\n")
    _fails_cleanly(work, capsys, COMPILE + ["-o", "out"], "src/my_main.c")
    assert not [p for p in os.listdir(work) if p.startswith(".tinyengine")]


def test_a_project_without_metadata_of_ours_is_refused(work, capsys):
    (work / "fake").mkdir()
    (work / "fake" / "metadata.json").write_text(json.dumps({"name": "something else"}))
    _fails_cleanly(work, capsys, COMPILE + ["-o", "fake"], "was not written by tinyengine-tvm")


def test_tar_outputs(work, capsys):
    (work / "user.tar").write_bytes(b"not a tar of ours")
    _fails_cleanly(work, capsys, COMPILE + ["-o", "user.tar"], "was not written by tinyengine-tvm")
    (work / "dir.tar").mkdir()
    _fails_cleanly(work, capsys, COMPILE + ["-o", "dir.tar"], "is a directory")
    assert cli.main(COMPILE + ["-o", "out/m.tar"]) == 0
    assert cli.main(COMPILE + ["-o", "out/m.tar"]) == 0  # a previous .tar of ours is replaced
    assert os.listdir(work / "out") == ["m.tar"]


def test_output_parent_folders_are_made(work, capsys):
    assert cli.main(COMPILE + ["-o", "a/b/c"]) == 0
    assert (work / "a" / "b" / "c" / "metadata.json").is_file()


def test_a_failed_compile_leaves_no_folder_behind(work, capsys):
    (work / "models" / "bad.tflite").write_bytes(b"garbage" * 10)
    _fails_cleanly(work, capsys, ["compile", "models/bad.tflite", "-o", "new/out"], "TFLite")
    assert not (work / "new").exists()


# ------------------------------------------------------------------ options of tvmc compile
@pytest.mark.parametrize("option, expect", [
    (["--pass-config", "MemoryAwareSchedule.max_states=abc"], "max_states='abc': must be an integer"),
    (["--pass-config", "PatchBasedInference.max_mac_overhead=-1"], "max_mac_overhead=-1: must be a number"),
    (["--pass-config", "PatchBasedInference.nope=1"], "has no option 'nope'"),
    (["--pass-config", "novalue"], "expected Pass.option=value"),
    (["--disable-pass", "NoSuchPass"], "unknown pass"),
    (["--model-name", "tinyengine_kernels"], "collides with a file or symbol"),
    (["--model-name", "stdint"], "collides with a file or symbol"),
    (["--target-tinyengine-board", "NO-SUCH-BOARD"], "NO-SUCH-BOARD"),
    (["--target-tinyengine-mcpu", "cortex-m0"], "cortex-m0"),
    (["--target-tinyengine-board", "NUCLEO-F746ZG", "--target-tinyengine-mcpu", "cortex-m4"], "does not match"),
    (["--target", "llvm"], "unknown target 'llvm'"),
    (["--memory-plot", "plot.txt"], "must end in .png"),
    (["--memory-plot", "/proc/plot.png"], "cannot create"),
    (["--memory-plot", "data.bin/plot.png"], "is a file, not a directory"),
    (["--memory-plot", "out/plot.png"], "inside the output directory"),
])
def test_bad_compile_options(work, capsys, option, expect):
    _fails_cleanly(work, capsys, COMPILE + ["-o", "out"] + option, expect)
    assert not (work / "out").exists()


def test_existing_user_file_as_memory_plot_is_refused(work, capsys):
    (work / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 32)
    _fails_cleanly(work, capsys, COMPILE + ["-o", "out", "--memory-plot", "photo.png"], "was not written")


def test_memory_plot_into_a_new_folder_and_replacing_our_plot(work, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    args = COMPILE + ["-o", "out", "--memory-plot", "plots/new/mem.png"]
    assert cli.main(args) == 0 and (work / "plots" / "new" / "mem.png").is_file()
    assert cli.main(args) == 0  # our own plot (and project) are replaced


@pytest.mark.parametrize("option, expect", [
    (["--sram-budget", "-5"], "out of range"),
    (["--sram-budget", "lots"], "not an integer"),
])
def test_compile_numbers_out_of_range(work, capsys, option, expect):
    _argparse_refuses(work, capsys, COMPILE + ["-o", "out"] + option, expect)


def test_model_that_is_a_directory_or_missing(work, capsys):
    _fails_cleanly(work, capsys, ["compile", "models", "-o", "out"], "is a directory")
    _fails_cleanly(work, capsys, ["compile", "nothere.tflite", "-o", "out"], "no such file")


# ------------------------------------------------------------------------------ tvmc run
@pytest.fixture
def project(work):
    assert cli.main(COMPILE + ["-o", "proj"]) == 0
    with open(work / "proj" / "metadata.json") as f:
        return work / "proj", json.load(f)


def _run(project_dir, *extra):
    return ["run", str(project_dir), *extra]


def test_run_inputs_that_are_not_right(work, project, capsys):
    proj, meta = project
    shape = meta["inputs"][0]["shape"]
    np.save(work / "x.npy", np.zeros(shape, np.int8))
    (work / "corrupt.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    np.savez(work / "obj.npz", input=np.array([object()], dtype=object))
    np.savez(work / "flat.npz", input=np.zeros(int(np.prod(shape)), np.int8))  # same size, other shape
    np.savez(work / "dtype.npz", input=np.zeros(shape, np.float32))
    np.save(work / "renamed.npz", np.zeros(shape, np.int8))
    os.rename(work / "renamed.npz.npy", work / "renamed.npz")
    for inputs, expect in [("missing.npz", "no such file"), ("x.npy", "give an .npz"),
                           ("corrupt.npz", "not a readable .npz"), ("obj.npz", "not plain numbers"),
                           ("flat.npz", "expected shape"), ("dtype.npz", "expected dtype"),
                           ("renamed.npz", "an .npy array")]:
        _fails_cleanly(work, capsys, _run(proj, "--inputs", inputs), expect)


def test_run_project_that_is_not_one(work, project, capsys):
    import tarfile

    proj, meta = project
    with tarfile.open(work / "random.tar", "w") as tar:
        tar.add(work / "data.bin", arcname="data.bin")
    (work / "garbage.tar").write_bytes(b"\0" * 100 + b"junk")
    _fails_cleanly(work, capsys, _run("random.tar"), "no metadata.json")
    _fails_cleanly(work, capsys, _run("garbage.tar"), "not a readable .tar")
    _fails_cleanly(work, capsys, _run("data.bin"), "not a compiled project")
    _fails_cleanly(work, capsys, _run("nothere"), "no such file or directory")
    bad = work / "bad"
    shutil.copytree(proj, bad)
    (bad / "metadata.json").write_text("{ not json")
    _fails_cleanly(work, capsys, _run(bad), "not readable JSON")
    broken = dict(meta, inputs=[{"name": "input", "shape": [1, -3], "dtype": "int8"}])
    (bad / "metadata.json").write_text(json.dumps(broken))
    _fails_cleanly(work, capsys, _run(bad), "has no valid shape")
    (bad / "metadata.json").write_text(json.dumps(dict(meta, model="../../x")))
    _fails_cleanly(work, capsys, _run(bad), "not a C identifier")
    (bad / "metadata.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "outputs"}))
    _fails_cleanly(work, capsys, _run(bad), "'outputs' is not a non-empty list")
    (bad / "metadata.json").write_text(json.dumps(meta))
    os.remove(bad / "src" / f"{meta['model']}.c")
    _fails_cleanly(work, capsys, _run(bad), "incomplete project")


def test_run_output_files(work, project, capsys):
    proj, meta = project
    _fails_cleanly(work, capsys, _run(proj, "--outputs", "data.bin"), "must end in .npz")
    _fails_cleanly(work, capsys, _run(proj, "--outputs", "/proc/o.npz"), "cannot create")
    _fails_cleanly(work, capsys, _run(proj, "--report", "r.txt"), "must end in .json")
    _fails_cleanly(work, capsys, _run(proj, "--report", "/proc/sub/r.json"), "cannot create")
    (work / "user.json").write_text('{"mine": true}')
    _fails_cleanly(work, capsys, _run(proj, "--report", "user.json"), "was not written")
    np.savez(work / "user.npz", something=np.zeros(2))
    _fails_cleanly(work, capsys, _run(proj, "--outputs", "user.npz"), "was not written")
    # New folders are made; our own outputs and reports are replaced.
    args = _run(proj, "--outputs", "res/o.npz", "--report", "res/r.json")
    assert cli.main(args) == 0 and cli.main(args) == 0
    assert sorted(os.listdir(work / "res")) == ["o.npz", "r.json"]
    with np.load(work / "res" / "o.npz") as data:
        assert sorted(data.files) == sorted(m["name"] for m in meta["outputs"])


@pytest.mark.parametrize("option, expect", [
    (["--print-top", "-1"], "out of range"),
    (["--repeat", "0"], "out of range"),
    (["--timeout", "0"], "seconds must be > 0"),
    (["--timeout", "nan"], "seconds must be > 0"),
    (["--seed", "-1"], "out of range"),
    (["--number", "0"], "out of range"),
    (["--link-timeout", "-2"], "seconds must be > 0"),
])
def test_run_numbers_out_of_range(work, project, capsys, option, expect):
    _argparse_refuses(work, capsys, _run(project[0], *option), expect)


def test_run_board_without_qemu(work, project, capsys):
    _fails_cleanly(work, capsys, _run(project[0], "--device=qemu", "--board", "NUCLEO-F746ZG"), "no QEMU model")


# ------------------------------------------------------------------ tvmc micro create-project
def test_create_project_never_replaces_user_files(work, project, capsys):
    proj, _ = project
    base = ["micro", "create-project"]
    opts = ["zephyr", "--project-option", "board=NUCLEO-F746ZG", "measure=false"]
    for force in ([], ["--force"]):
        _fails_cleanly(work, capsys, base + ["models", str(proj)] + opts + force, "not empty")
        _fails_cleanly(work, capsys, base + [".", str(proj)] + opts + force, "contains")
        _fails_cleanly(work, capsys, base + [str(proj), str(proj)] + opts + force, "contains")
    assert cli.main(base + ["app", str(proj)] + opts) == 0
    _fails_cleanly(work, capsys, base + ["app", str(proj)] + opts, "pass --force")
    assert cli.main(base + ["app", str(proj)] + opts + ["--force"]) == 0
    (work / "app" / "src" / "extra.c").write_text("/* mine */\n")
    _fails_cleanly(work, capsys, base + ["app", str(proj)] + opts + ["--force"], "src/extra.c")
