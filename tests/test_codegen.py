"""Generated C: deterministic, warning-free, no heap, sanitizer-clean; metadata and export."""
import json
import os
import re
import subprocess
import tarfile

import numpy as np
import pytest
import tvm

import tinyengine_tvm as te
from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.transform import LowerToIntegerKernels, parse_kernel_call

DEFAULT = str(default_model_path())

DRIVER = r"""
#include <stdio.h>
#include <stdint.h>
#include "{name}.h"
/* Reads the input tensor bytes from argv[1] and writes the output bytes to argv[2]. */
int main(int argc, char** argv) {{
  static int8_t in[{NAME}_INPUT_0_SIZE];
  static int8_t out[{NAME}_OUTPUT_0_SIZE];
  if (argc != 3) return 2;
  FILE* f = fopen(argv[1], "rb");
  if (!f || fread(in, 1, sizeof in, f) != sizeof in) return 3;
  fclose(f);
  if ({name}_run(in, out) != 0) return 4;
  f = fopen(argv[2], "wb");
  if (!f || fwrite(out, 1, sizeof out, f) != sizeof out) return 5;
  fclose(f);
  return 0;
}}
"""


@pytest.fixture(scope="module")
def default_compiled():
    return te.compile(DEFAULT)


def test_deterministic(default_compiled):
    again = te.compile(DEFAULT)
    assert again.files == default_compiled.files


def test_layout_and_metadata(default_compiled, tmp_path):
    out = default_compiled.export(str(tmp_path / "proj"))
    name = default_compiled.name
    for rel in (f"include/{name}.h", f"src/{name}.c", f"src/{name}_weights.c",
                "include/tinyengine_kernels.h", "metadata.json"):
        assert os.path.isfile(os.path.join(out, rel)), rel
    meta = json.load(open(os.path.join(out, "metadata.json")))
    assert meta["model"] == name
    for key in ("name", "shape", "dtype", "scale", "zero_point"):
        assert key in meta["inputs"][0] and key in meta["outputs"][0]
    mem = meta["memory"]
    assert mem["arena_bytes"] > 0 and mem["weights_bytes"] > 0 and 0 <= mem["scratch_bytes"] < mem["arena_bytes"]
    assert all({"name", "type", "macs", "live_before", "live_bytes", "live_after"} <= set(op) for op in meta["ops"])
    # What is alive after one op is what is alive before the next.
    for a, b in zip(meta["ops"], meta["ops"][1:]):
        assert a["live_after"] == b["live_before"]
    assert all(op["live_before"] <= op["live_bytes"] and op["live_after"] <= op["live_bytes"] for op in meta["ops"])
    assert sum(op["macs"] for op in meta["ops"]) == meta["total_macs"] > 0
    header = open(os.path.join(out, "include", f"{name}.h")).read()
    assert re.search(rf"#define {name.upper()}_ARENA_BYTES {mem['arena_bytes']}\b", header)
    # Only the kernels the model uses are shipped.
    kernels = sorted(os.listdir(os.path.join(out, "src", "kernels")))
    assert "te_resize.cc" not in kernels and "te_conv2d.cc" in kernels


def test_no_dynamic_allocation(default_compiled):
    for rel, text in default_compiled.files.items():
        if rel.endswith((".c", ".cc", ".h")):
            code = re.sub(r"/\*.*?\*/|//[^\n]*", "", text, flags=re.S)
            assert not re.search(r"\b(malloc|calloc|realloc|free|new|delete)\b\s*[\(\[]?", code), rel


def test_weights_are_const(default_compiled):
    weights = default_compiled.files[f"src/{default_compiled.name}_weights.c"]
    decls = re.findall(r"^(.*)\[\d+\] __attribute__", weights, flags=re.M)
    assert decls and all(d.startswith("const ") for d in decls)


def test_tarball_export(default_compiled, tmp_path):
    path = default_compiled.export(str(tmp_path / "model.tar"))
    with tarfile.open(path) as tar:
        names = set(tar.getnames())
    assert set(default_compiled.files) == names


def _gcc_driver(project, name, flags, exe):
    srcs = [os.path.join(project, "src", f) for f in sorted(os.listdir(os.path.join(project, "src"))) if f.endswith(".c")]
    kern = [os.path.join(project, "src", "kernels", f) for f in sorted(os.listdir(os.path.join(project, "src", "kernels"))) if f.endswith(".cc")]
    driver = os.path.join(project, "driver.c")
    with open(driver, "w") as f:
        f.write(DRIVER.format(name=name, NAME=name.upper()))
    inc = ["-I", os.path.join(project, "include"), "-I", os.path.join(project, "src", "kernels")]
    objs = []
    for s in srcs + [driver]:
        objs.append(s + ".o")
        subprocess.run(["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", *flags, *inc, "-c", s, "-o", objs[-1]], check=True)
    for s in kern:
        objs.append(s + ".o")
        subprocess.run(["g++", "-std=c++17", "-fno-exceptions", "-fno-rtti", "-Wall", "-Wextra", "-Werror", *flags, *inc,
                        "-c", s, "-o", objs[-1]], check=True)
    subprocess.run(["g++", *flags, "-o", exe, *objs], check=True)


def test_sanitizers_clean(default_compiled, tmp_path):
    """The whole model under -fsanitize=address,undefined gives the same output, no report."""
    project = default_compiled.export(str(tmp_path / "proj"))
    exe = str(tmp_path / "model_asan")
    _gcc_driver(project, default_compiled.name, ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all"], exe)
    desc = default_compiled.metadata["inputs"][0]
    for seed in range(3):
        x = np.random.default_rng(seed).integers(-128, 128, size=desc["shape"], dtype=np.int8)
        (tmp_path / "in.bin").write_bytes(x.tobytes())
        proc = subprocess.run([exe, str(tmp_path / "in.bin"), str(tmp_path / "out.bin")], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "runtime error" not in proc.stderr and "AddressSanitizer" not in proc.stderr
        got = np.frombuffer((tmp_path / "out.bin").read_bytes(), np.int8)
        want = list(default_compiled.run([x]).values())[0].reshape(-1)
        np.testing.assert_array_equal(got, want)


def test_lowering_is_a_tvm_pass():
    """LowerToIntegerKernels composes with TVM's own passes in a Sequential."""
    from tinyengine_tvm.frontend import load_model

    imported = load_model(DEFAULT)
    seq = tvm.transform.Sequential([LowerToIntegerKernels(), tvm.relax.transform.DeadCodeElimination()])
    lowered = seq(imported.mod)
    calls = [parse_kernel_call(b.value) for blk in lowered["main"].body.blocks for b in blk.bindings]
    kernels = {c.kernel for c in calls if c is not None}
    assert {"te_conv2d_s8", "te_depthwise_conv2d_s8", "te_fully_connected_s8"} <= kernels
    # No float arithmetic is left.
    text = lowered.script()
    assert "R.nn.conv2d" not in text and "R.dequantize" not in text and "R.quantize" not in text
