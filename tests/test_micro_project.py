"""tvmc micro create-project / build / flash: the generated Zephyr application,
for every STM32 board of the board table, the QEMU boards and every project option.

The files are checked for what a Zephyr 4.x build reads, and build/flash
with stand-ins for west, cmake and ninja; tests/test_zephyr_qemu.py builds
the app with a real Zephyr and runs it in QEMU."""
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
from tinyengine_tvm.micro.zephyr_boards import (MEASURED_SHARES, MEASURED_SHARES_MLPERF, STM32_BOARDS, ZEPHYR_BOARDS,
                                                 get_zephyr_board)
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
    assert sorted(ZEPHYR_BOARDS[b].board for b in STM32_BOARDS) == sorted(b.name for b in STM32)
    tdir = os.path.join(ROOT, "zephyr_app", "boards")
    for name in STM32_BOARDS:
        zb = ZEPHYR_BOARDS[name]
        board = zb.info
        overlay = open(os.path.join(tdir, f"{zb.file_stem}.overlay")).read()
        conf = open(os.path.join(tdir, f"{zb.file_stem}.conf")).read()
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
    with pytest.raises(TinyEngineError, match="no Zephyr application template.*nucleo_f746zg.*mps2/an500"):
        get_zephyr_board("mps2/an999")


def test_qemu_boards_have_a_template():
    """The emulated boards: Zephyr's names and the board table's, an overlay choosing UART0."""
    tdir = os.path.join(ROOT, "zephyr_app", "boards")
    qemu = [b for b in ZEPHYR_BOARDS.values() if b.emulated]
    assert sorted(b.zephyr_name for b in qemu) == ["mps2/an385", "mps2/an386", "mps2/an500", "mps3/corstone300/an547"]
    for zb in qemu:
        overlay = open(os.path.join(tdir, f"{zb.file_stem}.overlay")).read()
        assert "tinyengine,uart = &uart0;" in overlay and "current-speed = <@TE_BAUD@>;" in overlay
        assert zb.qemu_machine in overlay
        conf = open(os.path.join(tdir, f"{zb.file_stem}.conf")).read()
        # Zephyr selects no FPU for these two SoCs: prj.conf's CONFIG_FPU=y would warn.
        assert ("CONFIG_FPU=n" in conf) == (zb.zephyr_name in ("mps2/an385", "mps2/an500"))
        assert get_zephyr_board(zb.zephyr_name) is zb and get_zephyr_board(zb.file_stem) is zb
        if zb.info is not None:  # the board table's name (tvmc boards) works too
            assert get_zephyr_board(zb.info.name) is zb and zb.info.qemu_machine == zb.qemu_machine
    assert get_zephyr_board("mps2-an500").zephyr_name == "mps2/an500"
    assert get_zephyr_board("mps3-an547").zephyr_name == "mps3/corstone300/an547"
    assert get_zephyr_board("mps2-an385").cpu == "cortex-m3"


def test_measured_shares_are_in_the_board_table():
    for mlperf, table in ((False, MEASURED_SHARES), (True, MEASURED_SHARES_MLPERF)):
        for name, (flash, ram) in table.items():
            zb = ZEPHYR_BOARDS[name]
            assert zb.share(mlperf) == (flash, ram) and 5_000 < flash < 30_000 and 2_000 < ram < 8_000
        assert set(table) == set(ZEPHYR_BOARDS)
    # The MLPerf server links more of the C library on Zephyr's side, never less.
    assert all(MEASURED_SHARES_MLPERF[b][0] > MEASURED_SHARES[b][0] for b in ZEPHYR_BOARDS)


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
    boards = {f"boards/{b.file_stem}.{ext}" for b in ZEPHYR_BOARDS.values() for ext in ("overlay", "conf")}
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
    for line in ("CONFIG_CPP=y", "CONFIG_STD_CPP17=y", "CONFIG_CONSOLE=n", "CONFIG_UART_CONSOLE=n", "CONFIG_REBOOT=y",
                 f"CONFIG_MAIN_STACK_SIZE={extra.get('main_stack_size', '4096')}", "CONFIG_THREAD_STACK_INFO=y"):
        assert line in conf.splitlines()
    for b in ZEPHYR_BOARDS.values():
        overlay = open(os.path.join(out, "boards", f"{b.file_stem}.overlay")).read()
        assert f"current-speed = <{baud}>;" in overlay
    # Shared sources are the firmware's, byte for byte; the descriptor is the generator's.
    for rel in mp.SHARED_SOURCES:
        assert open(os.path.join(out, "tinyengine", rel)).read() == open(os.path.join(firmware_dir(), rel)).read()
    assert open(os.path.join(out, "src", "te_model_desc.c")).read() == model_desc_source(meta, ml)
    assert open(os.path.join(out, "src", "main.c")).read() == \
        open(os.path.join(ROOT, "zephyr_app", "src", "main.c")).read()

    pj = json.load(open(os.path.join(out, "project.json")))
    assert pj["board"] == zboard and pj["baud"] == int(baud) and pj["requirements"]["fits"]
    share_flash, share_ram = zb.share(ml is not None)
    measured_share = zboard in (MEASURED_SHARES_MLPERF if ml else MEASURED_SHARES)
    assert pj["requirements"]["zephyr_allowances_are_estimates"] is not measured_share
    assert pj["mlperf"] == (vars(ml) if ml else None)
    assert set(pj["other_boards"]) == set(ZEPHYR_BOARDS)
    r = pj["requirements"]
    assert r["flash"]["zephyr_allowance"] == (share_flash + mp.SHARE_MARGIN_FLASH if measured_share
                                              else mp.ZEPHYR_FLASH_ALLOWANCE)
    assert r["ram"]["zephyr_allowance"] == (share_ram + mp.SHARE_MARGIN_RAM if measured_share
                                            else mp.ZEPHYR_RAM_ALLOWANCE)
    assert ("measured on" in r["zephyr_share"]) == measured_share
    assert r["ram"]["main_stack"] == int(extra.get("main_stack_size", 4096))
    assert r["ram"]["available"] == zb.sram_bytes and r["flash"]["available"] == zb.flash_bytes
    assert r["ram"]["model"] >= meta["memory"]["arena_bytes"]
    assert r["flash"]["model"] >= meta["memory"]["weights_bytes"]
    assert ("measured" in r["sizes"]) == (HAVE_GCC and zb.info is not None)
    readme = open(os.path.join(out, "README.md")).read()
    assert f"west build -b {zboard}" in readme
    assert f"Zephyr itself ({'measured' if measured_share else 'estimate'})" in readme
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
    assert "peak is at op" in msg
    assert "flash: model 1,089,536 B (weights 1,024,000 B)" in msg and "over the 1,015,808 B of flash" in msg
    # Zephyr's share is the board's measured one, and the overshoot is the sum's.
    zb = ZEPHYR_BOARDS["disco_l475_iot1"]
    ram_share, flash_share = zb.zephyr_ram + mp.SHARE_MARGIN_RAM, zb.zephyr_flash + mp.SHARE_MARGIN_FLASH
    assert f"Zephyr {ram_share:,} B (measured on disco_l475_iot1)" in msg
    assert f"Zephyr {flash_share:,} B (measured on disco_l475_iot1)" in msg
    num = r"([\d,]+) B"
    ram = re.search(rf"RAM: model 204,800 B .*?\+ server {num} \+ main stack 4,096 B \+ Zephyr {num} .*?= {num}, "
                    rf"{num} over", msg)
    server, share, total, over = (int(x.replace(",", "")) for x in ram.groups())
    assert share == ram_share and total == 204_800 + server + 4096 + share and over == total - 98_304
    flash = re.search(rf"flash: model 1,089,536 B .*?\+ server {num} \+ Zephyr {num} .*?= {num}, {num} over", msg)
    server, share, total, over = (int(x.replace(",", "")) for x in flash.groups())
    assert share == flash_share and total == 1_089_536 + server + share and over == total - 1_015_808
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
    assert "nucleo_f746zg" in text and "MLPerf Tiny protocol (model ic01)" in text and "(measured)" in text
    assert cli.main(args) == 2 and "pass --force" in capsys.readouterr().err
    assert cli.main(args + ["--force"]) == 0
    assert json.load(open(os.path.join(out, "project.json")))["mlperf"]["model_version"] == "ic01"


# --------------------------------------------------------------------------- build / flash
@pytest.fixture
def app(compiled, tmp_path):
    out = str(tmp_path / "app")
    mp.create_project(out, compiled[0], "zephyr", {"board": "nucleo_h743zi", "measure": "false"})
    return out


def _standins(bin_dir, log, names=("west", "cmake", "ninja", "dtc")):
    """Stand-ins for the build tools: each appends 'name ZEPHYR_BASE args' to ``log`` and
    leaves what the real one would (west build / ninja: zephyr/zephyr.elf; cmake: build.ninja)."""
    bin_dir.mkdir(exist_ok=True)
    for name in names:
        tool = bin_dir / name
        tool.write_text(
            f"#!{sys.executable}\nimport os, sys\na = sys.argv[1:]\n"
            f"open({str(log)!r}, 'a').write({name!r} + ' ' + os.environ.get('ZEPHYR_BASE', '-') + ' ' + ' '.join(a) + "
            "'\\n')\n"
            "def out(d, f):\n    os.makedirs(os.path.join(d, os.path.dirname(f)), exist_ok=True)\n"
            "    open(os.path.join(d, f), 'w').close()\n"
            f"if {name!r} == 'west' and a[0] == 'build': out(a[a.index('-d') + 1], 'zephyr/zephyr.elf')\n"
            f"if {name!r} == 'cmake': out(a[a.index('-B') + 1], 'build.ninja')\n"
            f"if {name!r} == 'ninja': out(a[a.index('-C') + 1], 'zephyr/zephyr.elf')\n")
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def no_toolchain_check(monkeypatch):
    """The toolchain is a Zephyr SDK's for the stand-in builds (no arm-none-eabi-gcc needed)."""
    monkeypatch.setenv("ZEPHYR_TOOLCHAIN_VARIANT", "zephyr")


def test_build_and_flash_say_what_is_missing(app, tmp_path, monkeypatch, capsys, no_toolchain_check):
    monkeypatch.delenv("ZEPHYR_BASE", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert cli.main(["micro", "build", app, "zephyr"]) == 2
    err = capsys.readouterr().err
    assert "no Zephyr workspace: ZEPHYR_BASE is not set and no --zephyr-workspace DIR" in err
    assert f"west build -b nucleo_h743zi -d {app}/build {app}" in err
    assert cli.main(["micro", "flash", app, "zephyr"]) == 2
    assert "ZEPHYR_BASE is not set" in capsys.readouterr().err
    # A directory that is no workspace, and a workspace without the build tools.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli.main(["micro", "build", app, "zephyr", "--zephyr-workspace", str(empty)]) == 2
    assert "holds neither env.sh nor zephyr/" in capsys.readouterr().err
    assert cli.main(["micro", "build", app, "zephyr", "--zephyr-workspace", str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "ws" / "zephyr").mkdir(parents=True)
    assert cli.main(["micro", "build", app, "zephyr", "--zephyr-workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    for tool in ("'cmake' is not installed", "'dtc' is not installed", "'ninja' is not installed (apt-get install "
                 "ninja-build)"):
        assert tool in err
    monkeypatch.delenv("ZEPHYR_TOOLCHAIN_VARIANT")
    monkeypatch.delenv("ZEPHYR_SDK_INSTALL_DIR", raising=False)
    _standins(tmp_path / "bin", tmp_path / "log", ("cmake", "ninja", "dtc"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert cli.main(["micro", "build", app, "zephyr", "--zephyr-workspace", str(tmp_path / "ws")]) == 2
    assert "no toolchain: arm-none-eabi-gcc is not installed" in capsys.readouterr().err
    assert not (tmp_path / "log").exists() and not os.path.exists(os.path.join(app, "build"))


def test_build_and_flash_call_west(app, tmp_path, monkeypatch, capsys, no_toolchain_check):
    """Stand-in tools record their arguments: the commands a west workspace would run."""
    log = tmp_path / "west.log"
    _standins(tmp_path / "bin", log)
    zbase = tmp_path / "ws" / "zephyr"
    zbase.mkdir(parents=True)
    (tmp_path / "ws" / ".west").mkdir()  # a west workspace: builds use west
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setenv("ZEPHYR_BASE", str(zbase))
    assert cli.main(["micro", "flash", app, "zephyr"]) == 2
    assert "run 'tvmc micro build" in capsys.readouterr().err
    assert cli.main(["micro", "build", app, "zephyr"]) == 0
    assert cli.main(["micro", "build", app, "zephyr", "-f", "--project-option", "board=nucleo_f746zg"]) == 0
    assert cli.main(["micro", "flash", app, "zephyr", "--project-option", "runner=openocd"]) == 0
    lines = log.read_text().splitlines()
    assert lines == [f"west {zbase} build -b nucleo_h743zi -d {app}/build -p auto {app}",
                     f"west {zbase} build -b nucleo_f746zg -d {app}/build -p always {app}",
                     f"west {zbase} flash -d {app}/build --runner openocd"]


def test_build_with_cmake_and_ninja_in_a_workspace_dir(app, tmp_path, monkeypatch, capsys, no_toolchain_check):
    """--zephyr-workspace DIR: its env.sh is sourced; without .west/, cmake + ninja build."""
    log = tmp_path / "tools.log"
    _standins(tmp_path / "bin", log)  # west is installed, but DIR is no west workspace
    ws = tmp_path / "ws"
    (ws / "zephyr").mkdir(parents=True)
    (ws / "modules" / "hal" / "cmsis_6" / "zephyr").mkdir(parents=True)
    (ws / "modules" / "hal" / "cmsis_6" / "zephyr" / "module.yml").write_text("name: cmsis_6\n")
    (ws / "env.sh").write_text('export TE_TEST_MARK=sourced\nexport ZEPHYR_BASE="$(dirname "$BASH_SOURCE")/zephyr"\n')
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setenv("ZEPHYR_BASE", "/somewhere/else")  # the option wins
    assert cli.main(["micro", "build", app, "zephyr", "--zephyr-workspace", str(ws)]) == 0
    out = capsys.readouterr().out
    assert "not a west workspace" in out and f"built        {app}/build" in out
    assert log.read_text().splitlines() == [
        f"cmake {ws}/zephyr -GNinja -S {app} -B {app}/build -DBOARD=nucleo_h743zi",
        f"ninja {ws}/zephyr -C {app}/build"]
    # Configured already: ninja only; another board: configured again from scratch.
    with open(os.path.join(app, "build", "CMakeCache.txt"), "w") as f:
        f.write("BOARD:STRING=nucleo_h743zi\n")
    assert cli.main(["micro", "build", app, "zephyr", "--zephyr-workspace", str(ws)]) == 0
    assert cli.main(["micro", "build", app, "zephyr", "--zephyr-workspace", str(ws), "--project-option",
                     "board=nucleo_f746zg"]) == 0
    assert log.read_text().splitlines()[2:] == [
        f"ninja {ws}/zephyr -C {app}/build",
        f"cmake {ws}/zephyr -GNinja -S {app} -B {app}/build -DBOARD=nucleo_f746zg",
        f"ninja {ws}/zephyr -C {app}/build"]
    from tinyengine_tvm.micro.zephyr_workspace import find_workspace

    found = find_workspace(str(ws))
    assert found.env["TE_TEST_MARK"] == "sourced" and found.tool == "cmake+ninja"
    assert found.env["ZEPHYR_MODULES"] == str(ws / "modules" / "hal" / "cmsis_6")
    # Flashing needs west's runners.
    assert cli.main(["micro", "flash", app, "zephyr", "--zephyr-workspace", str(ws)]) == 2
    assert "flashing needs west and a west workspace" in capsys.readouterr().err


def test_emulated_boards_are_not_flashed(compiled, tmp_path, capsys):
    out = str(tmp_path / "q")
    info = mp.create_project(out, compiled[0], "zephyr", {"board": "mps2-an500", "measure": "false"})
    assert info["board"] == "mps2/an500"
    assert "in QEMU (qemu-system-arm -machine mps2-an500" in open(os.path.join(out, "README.md")).read()
    assert cli.main(["micro", "flash", out, "zephyr"]) == 2
    assert "mps2/an500 is emulated: nothing to flash" in capsys.readouterr().err
    with pytest.raises(TinyEngineError, match="measure=true: mps2/an385 .*no Cortex-M3"):
        mp.create_project(str(tmp_path / "m3"), compiled[0], "zephyr", {"board": "mps2/an385", "measure": "true"})
    assert not os.path.exists(str(tmp_path / "m3"))


def test_build_refuses_what_is_not_a_project(tmp_path):
    with pytest.raises(TinyEngineError, match="not a project of tvmc micro create-project"):
        mp.build_project(str(tmp_path))
