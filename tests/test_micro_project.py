"""tvmc micro create-project / build / flash: the generated Zephyr application,
for every STM32 board of the board table and every project option.

Zephyr cannot be built here: the files are checked for what a Zephyr 4.x
build reads (test_serial_qemu.py builds their C bare-metal and runs it)."""
import json
import os
import re
import stat
import sys

import pytest

import tinyengine_tvm as te
from tinyengine_tvm import cli
from tinyengine_tvm.errors import MemoryBudgetError, TinyEngineError
from tinyengine_tvm.micro import project as mp
from tinyengine_tvm.micro.model_desc import MlperfOptions, model_desc_source
from tinyengine_tvm.micro.zephyr_boards import ZEPHYR_BOARDS, get_zephyr_board
from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.runtime.firmware import firmware_dir, missing_tools
from tinyengine_tvm.targets import BOARDS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STM32 = [b for b in BOARDS.values() if not b.emulated]
HAVE_GCC = not [t for t in missing_tools() if "qemu" not in t]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("micro") / "default")
    c = te.compile(str(default_model_path()))
    c.export(out)
    return out, c.metadata


@pytest.fixture(scope="module")
def measure_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("measure"))


def test_every_stm32_board_has_a_template():
    assert sorted(b.board for b in ZEPHYR_BOARDS.values()) == sorted(b.name for b in STM32)
    tdir = os.path.join(ROOT, "zephyr_app", "boards")
    for zb in ZEPHYR_BOARDS.values():
        board = zb.info
        overlay = open(os.path.join(tdir, f"{zb.zephyr_name}.overlay")).read()
        conf = open(os.path.join(tdir, f"{zb.zephyr_name}.conf")).read()
        # The overlay's UART is the board table's (e.g. USART3 <-> usart3).
        assert f"tinyengine,uart = &{zb.uart};" in overlay and f"&{zb.uart} {{" in overlay
        assert zb.uart == board.uart_name.lower(), (zb.zephyr_name, board.uart_name)
        assert "current-speed = <@TE_BAUD@>;" in overlay
        assert f"{zb.clock_hz // 1_000_000} MHz" in conf and board.mcu in conf
        assert ("CONFIG_DCACHE=y" in conf) == (board.core == "cortex-m7")
        assert zb.sram_bytes <= board.sram_bytes and zb.flash_bytes <= board.flash_bytes
        assert zb.clock_hz <= board.clock_hz
    assert get_zephyr_board("NUCLEO-H743ZI").zephyr_name == "nucleo_h743zi"
    assert get_zephyr_board("nucleo_h743zi/stm32h743xx").zephyr_name == "nucleo_h743zi"
    with pytest.raises(TinyEngineError, match="no Zephyr application template.*nucleo_f746zg"):
        get_zephyr_board("mps2-an500")


OPTION_SETS = [
    {},
    {"mlperf": "true"},
    {"mlperf": "true", "mlperf_model": "ad01"},
    {"mlperf": "true", "mlperf_model": "vww01", "mlperf_input": "raw"},
    {"baud": "921600", "main_stack_size": "8192", "max_payload": "256"},
    {"mlperf": "true", "mlperf_model": "kws01", "mlperf_energy": "true", "mlperf_timestamp_gpio": "gpiof,13"},
]


@pytest.mark.parametrize("zboard", sorted(ZEPHYR_BOARDS))
@pytest.mark.parametrize("opts", range(len(OPTION_SETS)))
def test_create_project_files(compiled, measure_dir, tmp_path, zboard, opts):
    project, meta = compiled
    extra = OPTION_SETS[opts]
    out = str(tmp_path / "app")
    info = mp.create_project(out, project, "zephyr", {"board": zboard, **extra}, measure_build_dir=measure_dir)
    zb = ZEPHYR_BOARDS[zboard]
    ml = None
    if extra.get("mlperf") == "true":
        ml = MlperfOptions.create(extra.get("mlperf_model", meta["model"]), extra.get("mlperf_input"))
    # The official runner's device files: ad01 at 921600 baud, the others 115200, energy mode 9600.
    baud = extra.get("baud", "9600" if extra.get("mlperf_energy") else "921600" if ml and ml.model_version == "ad01"
                     else "115200")
    assert info["baud"] == int(baud)
    if extra.get("mlperf_energy"):
        overlay = open(os.path.join(out, "mlperf_timestamp.overlay")).read()
        assert "tinyengine-timestamp = &te_timestamp;" in overlay and "<&gpiof 13 (" in overlay
        assert "set(TE_MLPERF_ENERGY 1)" in open(os.path.join(out, "CMakeLists.txt")).read()
    else:
        assert not os.path.exists(os.path.join(out, "mlperf_timestamp.overlay"))

    files = sorted(os.path.relpath(os.path.join(r, f), out) for r, _, fs in os.walk(out) for f in fs)
    boards = {f"boards/{b}.{ext}" for b in ZEPHYR_BOARDS for ext in ("overlay", "conf")}
    assert boards <= set(files)
    for f in ("CMakeLists.txt", "prj.conf", "README.md", "project.json", "src/main.c", "src/te_model_desc.c",
              "tinyengine/include/te_protocol.h", "tinyengine/include/te_mlperf.h", "tinyengine/src/te_protocol.c",
              "tinyengine/src/te_mlperf.c", "model/metadata.json", f"model/include/{meta['model']}.h",
              f"model/src/{meta['model']}.c"):
        assert f in files, f
    assert any(f.startswith("model/src/kernels/") and f.endswith(".cc") for f in files)
    for f in files:
        if not f.endswith(".json"):
            assert "@TE_" not in open(os.path.join(out, f), errors="replace").read(), f

    cm = open(os.path.join(out, "CMakeLists.txt")).read()
    assert "find_package(Zephyr REQUIRED HINTS $ENV{ZEPHYR_BASE})" in cm
    assert re.search(r"add_library\(tinyengine_model STATIC", cm) and "zephyr_interface" in cm
    assert "target_link_libraries(app PRIVATE tinyengine_protocol tinyengine_model)" in cm
    assert f"set(TE_MLPERF {1 if ml else 0})" in cm
    assert f"set(TE_MAX_PAYLOAD {extra.get('max_payload', '1024')})" in cm
    assert f"west build -b {zboard}" in cm
    conf = open(os.path.join(out, "prj.conf")).read()
    for line in ("CONFIG_CPP=y", "CONFIG_STD_CPP17=y", "CONFIG_CONSOLE=n", "CONFIG_REBOOT=y",
                 f"CONFIG_MAIN_STACK_SIZE={extra.get('main_stack_size', '4096')}", "CONFIG_THREAD_STACK_INFO=y"):
        assert line in conf.splitlines()
    for b in ZEPHYR_BOARDS.values():
        overlay = open(os.path.join(out, "boards", f"{b.zephyr_name}.overlay")).read()
        assert f"current-speed = <{baud}>;" in overlay
    # Shared sources are the firmware's, byte for byte; the descriptor is the generator's.
    for rel in mp.SHARED_SOURCES:
        assert open(os.path.join(out, "tinyengine", rel)).read() == open(os.path.join(firmware_dir(), rel)).read()
    assert open(os.path.join(out, "src", "te_model_desc.c")).read() == model_desc_source(meta, ml)
    assert open(os.path.join(out, "src", "main.c")).read() == \
        open(os.path.join(ROOT, "zephyr_app", "src", "main.c")).read()

    pj = json.load(open(os.path.join(out, "project.json")))
    assert pj["board"] == zboard and pj["baud"] == int(baud) and pj["requirements"]["fits"]
    assert pj["requirements"]["zephyr_allowances_are_estimates"] is True
    assert pj["mlperf"] == (vars(ml) if ml else None)
    assert set(pj["other_boards"]) == set(ZEPHYR_BOARDS)
    r = pj["requirements"]
    assert r["flash"]["zephyr_allowance"] == mp.ZEPHYR_FLASH_ALLOWANCE
    assert r["ram"]["main_stack"] == int(extra.get("main_stack_size", 4096))
    assert r["ram"]["available"] == zb.sram_bytes and r["flash"]["available"] == zb.flash_bytes
    assert r["ram"]["model"] >= meta["memory"]["arena_bytes"]
    assert r["flash"]["model"] >= meta["memory"]["weights_bytes"]
    assert ("measured" in r["sizes"]) == HAVE_GCC
    readme = open(os.path.join(out, "README.md")).read()
    assert f"west build -b {zboard}" in readme and "estimate" in readme
    assert info["project_dir"] == out


def test_mlperf_presets(compiled, measure_dir, tmp_path):
    project, meta = compiled
    for version, mode, results in (("kws01", "raw", "vector"), ("ic01", "uint8_minus_128", "vector"),
                                   ("vww01", "uint8_minus_128", "vector"), ("ad01", "float32", "mse")):
        out = str(tmp_path / version)
        mp.create_project(out, project, "zephyr", {"board": "nucleo_l4r5zi", "mlperf": "true",
                                                   "mlperf_model": version, "measure": "false"})
        desc = open(os.path.join(out, "src", "te_model_desc.c")).read()
        code = {"raw": 0, "uint8_minus_128": 1, "float32": 2}[mode]
        assert f'te_mlperf_cfg = {{"{version}", {code}u, {1 if results == "mse" else 0}u' in desc


def test_estimates_without_the_cross_compiler(compiled, tmp_path):
    project, meta = compiled
    info = mp.create_project(str(tmp_path / "a"), project, "zephyr", {"board": "nucleo_f412zg", "measure": "false"})
    r = info["requirements"]
    assert "estimated" in r["sizes"]
    assert r["flash"]["model"] == meta["memory"]["weights_bytes"] + 64 * 1024
    assert r["ram"]["model"] == meta["memory"]["arena_bytes"]


def _big(compiled, tmp_path, arena, weights):
    project, meta = compiled
    import shutil

    big = str(tmp_path / "big")
    shutil.copytree(project, big)
    m = json.load(open(os.path.join(big, "metadata.json")))
    m["memory"]["arena_bytes"], m["memory"]["weights_bytes"] = arena, weights
    json.dump(m, open(os.path.join(big, "metadata.json"), "w"))
    return big


def test_refuses_what_does_not_fit_with_the_numbers(compiled, tmp_path, capsys):
    big = _big(compiled, tmp_path, 200 * 1024, 1000 * 1024)
    out = tmp_path / "never"
    with pytest.raises(MemoryBudgetError) as e:
        mp.create_project(str(out), big, "zephyr", {"board": "disco_l475_iot1", "measure": "false"})
    msg = str(e.value)
    assert "does not fit disco_l475_iot1" in msg
    assert "RAM: model 204,800 B (arena 204,800 B)" in msg and "over the 98,304 B zephyr,sram region" in msg
    assert "Zephyr 8,192 B (estimate)" in msg and "peak is at op" in msg
    assert "flash: model 1,089,536 B (weights 1,024,000 B)" in msg and "over the 1,015,808 B of flash" in msg
    assert not out.exists()
    # ... while a board with the room takes it.
    info = mp.create_project(str(tmp_path / "h7"), big, "zephyr", {"board": "nucleo_h743zi", "measure": "false"})
    assert info["requirements"]["fits"] and not info["other_boards"]["disco_l475_iot1"]["fits"]
    # The command line says it the same way and exits with 2.
    assert cli.main(["micro", "create-project", str(out), big, "zephyr", "--project-option",
                     "board=disco_l475_iot1", "measure=false"]) == 2
    assert "does not fit disco_l475_iot1" in capsys.readouterr().err


def test_bad_options(compiled, tmp_path):
    project, _ = compiled
    out = str(tmp_path / "x")
    for opts, match in (({}, "board=BOARD is required"), ({"board": "nope"}, "no Zephyr application template"),
                        ({"board": "nucleo_f746zg", "baud": "fast"}, "not an integer"),
                        ({"board": "nucleo_f746zg", "mlperf_model": "kws01"}, "require mlperf=true"),
                        ({"board": "nucleo_f746zg", "mlperf": "1", "mlperf_energy": "true",
                          "mlperf_timestamp_gpio": "D7"}, "use CONTROLLER,PIN"),
                        ({"board": "nucleo_f746zg", "mlperf": "1", "mlperf_timestamp_gpio": "gpiof,13"},
                         "need mlperf_energy=true"),
                        ({"board": "nucleo_f746zg", "mlperf": "1", "mlperf_db_bytes": "16"}, "of db"),
                        ({"board": "nucleo_f746zg", "mlperf": "maybe"}, "true or false"),
                        ({"board": "nucleo_f746zg", "mlperf": "1", "mlperf_input": "raw", "mlperf_results": "mse"},
                         "needs mlperf_input=float32"),
                        ({"board": "nucleo_f746zg", "max_payload": "10"}, "must be 64..4096")):
        with pytest.raises(TinyEngineError, match=match):
            mp.create_project(out, project, "zephyr", opts)
    with pytest.raises(TinyEngineError, match="unknown project option 'colour'"):
        mp.parse_project_options(["colour=red"])
    with pytest.raises(TinyEngineError, match="KEY=VALUE"):
        mp.parse_project_options(["board"])
    assert mp.parse_project_options(["zephyr_board=nucleo_f746zg", "config_main_stack_size=2048"]) == \
        {"board": "nucleo_f746zg", "main_stack_size": "2048"}
    assert not os.path.exists(out)


def test_cli_create_from_tarball_and_force(compiled, tmp_path, capsys):
    project, meta = compiled
    tar = str(tmp_path / "m.tar")
    assert cli.main(["compile", str(default_model_path()), "-o", tar]) == 0
    out = str(tmp_path / "app")
    args = ["micro", "create-project", out, tar, "zephyr", "--project-option", "board=NUCLEO-F746ZG", "mlperf=true",
            "--project-option", "mlperf_model=ic01", "measure=false"]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "nucleo_f746zg" in text and "MLPerf Tiny protocol (model ic01)" in text and "(estimate)" in text
    assert cli.main(args) == 2 and "pass --force" in capsys.readouterr().err
    assert cli.main(args + ["--force"]) == 0
    assert json.load(open(os.path.join(out, "project.json")))["mlperf"]["model_version"] == "ic01"


# --------------------------------------------------------------------------- build / flash
@pytest.fixture
def app(compiled, tmp_path):
    out = str(tmp_path / "app")
    mp.create_project(out, compiled[0], "zephyr", {"board": "nucleo_h743zi", "measure": "false"})
    return out


def test_build_and_flash_say_what_is_missing(app, monkeypatch, capsys):
    monkeypatch.delenv("ZEPHYR_BASE", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert cli.main(["micro", "build", app, "zephyr"]) == 2
    err = capsys.readouterr().err
    assert "'west' is not installed (pip install west" in err and "ZEPHYR_BASE is not set" in err
    assert f"west build -b nucleo_h743zi -d {app}/build {app}" in err
    assert cli.main(["micro", "flash", app, "zephyr"]) == 2
    assert "ZEPHYR_BASE is not set" in capsys.readouterr().err


def test_build_and_flash_call_west(app, tmp_path, monkeypatch, capsys):
    """A stand-in west records its arguments: the commands a Zephyr workspace would run."""
    log = tmp_path / "west.log"
    west = tmp_path / "bin" / "west"
    west.parent.mkdir()
    west.write_text(f"#!{sys.executable}\nimport os, sys\n"
                    f"open({str(log)!r}, 'a').write(os.environ['ZEPHYR_BASE'] + ' ' + ' '.join(sys.argv[1:]) + '\\n')\n"
                    "if sys.argv[1] == 'build': os.makedirs(sys.argv[sys.argv.index('-d') + 1], exist_ok=True)\n")
    west.chmod(west.stat().st_mode | stat.S_IEXEC)
    zbase = tmp_path / "zephyr"
    zbase.mkdir()
    monkeypatch.setenv("PATH", f"{west.parent}:{os.environ['PATH']}")
    monkeypatch.setenv("ZEPHYR_BASE", str(zbase))
    assert cli.main(["micro", "flash", app, "zephyr"]) == 2
    assert "run 'tvmc micro build" in capsys.readouterr().err
    assert cli.main(["micro", "build", app, "zephyr"]) == 0
    assert cli.main(["micro", "build", app, "zephyr", "-f", "--project-option", "board=nucleo_f746zg"]) == 0
    assert cli.main(["micro", "flash", app, "zephyr", "--project-option", "runner=openocd"]) == 0
    lines = log.read_text().splitlines()
    assert lines == [f"{zbase} build -b nucleo_h743zi -d {app}/build -p auto {app}",
                     f"{zbase} build -b nucleo_f746zg -d {app}/build -p always {app}",
                     f"{zbase} flash -d {app}/build --runner openocd"]
    with pytest.raises(TinyEngineError, match="not a project of tvmc micro create-project"):
        mp.build_project(str(tmp_path))
