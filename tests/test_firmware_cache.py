"""The firmware build's object cache: a model source is keyed on the headers it includes, so
candidates of one model (tvmc tune, a farm server) share the objects of sources that did not change.

The first tests need nothing but Python; the last builds firmware (arm-none-eabi-gcc)."""
import json
import os
import shutil

import pytest

import tinyengine_tvm as te
from tinyengine_tvm.micro.baremetal import build_serial_firmware
from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.runtime.firmware import included_headers_digest, missing_tools


def _tree(tmp_path, files):
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path / "src" / "m.c"), [str(tmp_path / "include")]


def test_a_source_is_keyed_on_the_headers_it_reaches_only(tmp_path):
    src, dirs = _tree(tmp_path, {"src/m.c": '#include <stdint.h>\n#include "a.h"\n',
                                 "include/a.h": "#include <b.h>\n", "include/b.h": "int b;\n",
                                 "include/unused.h": "int u;\n"})
    first = included_headers_digest(src, dirs)
    assert first is not None
    (tmp_path / "include" / "unused.h").write_text("int u2;\n")
    assert included_headers_digest(src, dirs) == first  # not included: not in the key
    (tmp_path / "include" / "b.h").write_text("int b2;\n")
    assert included_headers_digest(src, dirs) != first  # reached through a.h, by <>: in the key
    weights, _ = _tree(tmp_path / "w", {"src/m.c": "#include <stdint.h>\nconst int w = 1;\n"})
    assert included_headers_digest(weights, dirs) == included_headers_digest(weights, [])


@pytest.mark.parametrize("text", ['#include HEADER\n', '#include "nowhere.h"\n',
                                  '#if __has_include("x.h")\n#endif\n'])
def test_an_include_that_cannot_be_followed_keys_on_every_header(tmp_path, text):
    src, dirs = _tree(tmp_path, {"src/m.c": text, "include/a.h": ""})
    assert included_headers_digest(src, dirs) is None


@pytest.mark.skipif(bool(missing_tools()), reason="needs arm-none-eabi-gcc")
def test_candidates_share_the_objects_of_unchanged_sources(tmp_path):
    """Two projects of one model whose model header differs: the weights (which include no header of
    the project) and the kernels compile once; the model's C, which includes the header, twice."""
    a = str(tmp_path / "a")
    compiled = te.compile(str(default_model_path()))
    compiled.export(a)
    b = str(tmp_path / "b")
    shutil.copytree(a, b)
    header = os.path.join(b, "include", f"{compiled.metadata['model']}.h")
    with open(header, "a") as f:
        f.write("\n/* another candidate */\n")
    build = str(tmp_path / "build")
    objs = []
    for project in (a, b):
        elf = build_serial_firmware(project, "mps2-an500", build)
        with open(os.path.join(os.path.dirname(elf), "objects.json")) as f:
            objs.append({os.path.basename(o).split(".")[0]: o for o in json.load(f)["model"]})
    name = compiled.metadata["model"]
    assert objs[0].keys() == objs[1].keys() and f"{name}_weights" in objs[0]
    for stem, obj in objs[0].items():
        assert (obj == objs[1][stem]) == (stem != name), stem
