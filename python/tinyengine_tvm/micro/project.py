"""``tvmc micro create-project / build / flash``: a compiled model as a
standalone Zephyr 4.x application for the STM32 boards.

``create_project`` copies the template ``zephyr_app/`` (CMakeLists.txt with
``find_package(Zephyr)``, prj.conf, an overlay and a conf file for every
STM32 board of the board table, ``src/main.c``), the compiled model and the
kernels it uses (``model/``, built as a library of the app), the benchmark
servers shared with the bare-metal firmware (``tinyengine/``) and the
generated ``src/te_model_desc.c``. Before writing anything it checks that
the plan fits the board: the model's flash and RAM (measured by compiling it
for the board's core with arm-none-eabi-gcc when installed, else estimated
from the plan), the server's buffers, main's stack and Zephyr's own needs.

Zephyr's own needs are MEASURED per board (``zephyr_flash``/``zephyr_ram``
of the board table in ``zephyr_boards.py``, from real builds of the app,
re-measured by ``scripts/measure_zephyr_share.py``); ``ZEPHYR_FLASH_ALLOWANCE``
and ``ZEPHYR_RAM_ALLOWANCE`` below are the estimates used for a board not
measured yet. See docs/zephyr.md.

``build_project`` / ``flash_project`` build with ``west`` (or cmake+ninja)
in the workspace of ``--zephyr-workspace`` or ZEPHYR_BASE
(``zephyr_workspace.py``), and say what is missing otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Dict, List, Mapping, Optional, Sequence, Union

from ..errors import MemoryBudgetError, TinyEngineError
from ..targets.fit import RUNTIME_FLASH_ALLOWANCE
from .model_desc import (MlperfOptions, mlperf_default_baud, read_metadata, staging_bytes,
                         write_model_desc)
from .options import bool_option, int_option
from .zephyr_boards import SHARE_METHOD, ZEPHYR_BOARDS, ZephyrBoard, get_zephyr_board
from .zephyr_workspace import ZephyrWorkspace, build_app, find_workspace, run_logged

PLATFORMS = ("zephyr",)

#: Flash Zephyr itself needs besides the application's code and data, for a
#: board whose share was not measured (see zephyr_boards.py): an ESTIMATE.
#: Zephyr 4.3's hello_world for nucleo_f746zg has 18 KB of text (kernel, UART
#: driver, clock/pinctrl/GPIO init, minimal libc; arm-none-eabi-gcc 12.2); the
#: server adds C++ start-up, sys_reboot and the fatal-error hook: 6 KiB on top.
ZEPHYR_FLASH_ALLOWANCE = 24 * 1024
#: RAM Zephyr itself needs besides main's stack (counted separately from
#: CONFIG_MAIN_STACK_SIZE) and the application's data, for a board not
#: measured: an ESTIMATE. The ISR stack (CONFIG_ISR_STACK_SIZE, 2 KiB), the idle
#: thread's stack, kernel and device objects, with a 2x margin.
ZEPHYR_RAM_ALLOWANCE = 8 * 1024
#: Added to a board's measured Zephyr share: create-project measures the model and
#: the servers bare-metal, whose flags differ a little from Zephyr's, and a model
#: may pull in C library functions the one-layer model of the measurement does not
#: (seen: the servers up to 100 B larger under Zephyr with kws_ref_model on mps2/an386).
SHARE_MARGIN_FLASH = 512
SHARE_MARGIN_RAM = 128
#: When arm-none-eabi-gcc is absent: the server's code (measured 4-7 KiB on
#: Cortex-M7 with MLPerf) and its buffers besides the frame buffer.
SERVER_FLASH_ESTIMATE = 8 * 1024
SERVER_RAM_ESTIMATE = 768

DEFAULTS = {"mlperf": "false", "baud": "115200", "main_stack_size": "4096", "max_payload": "1024",
            "measure": "auto", "west_cmd": "west", "mlperf_timestamp_hold_us": "10", "profile": "false"}
OPTION_HELP = {
    "board": "Zephyr board name (nucleo_f746zg, nucleo_h743zi, ..., mps2/an500) or board-table name; required",
    "mlperf": "true: the firmware speaks the MLPerf Tiny / EEMBC protocol instead of tinyengine's (false)",
    "mlperf_model": "what 'profile' reports, kws01|ic01|vww01|ad01 or any name (default: the model's name)",
    "mlperf_input": "raw|uint8_minus_128|float32: what 'db' bytes are (default: by mlperf_model, else raw)",
    "mlperf_results": "vector|mse: what 'results' prints (default: by mlperf_model, else vector)",
    "mlperf_format": "printf3|trunc3|printf3_comma: how result values are printed (default: as the "
                     "benchmark's reference submission: kws01 trunc3, vww01 printf3_comma, else printf3)",
    "mlperf_db_bytes": "capacity of the MLPerf db buffer (default: the reference's 27648, or the input's size)",
    "mlperf_energy": "true: EEMBC energy mode, time stamps are pulses on the timestamp GPIO (false)",
    "mlperf_timestamp_gpio": "energy mode's timestamp pin, CONTROLLER,PIN as in devicetree "
                             "(default arduino_header,13: Arduino D7, as the reference DUTs)",
    "mlperf_timestamp_hold_us": "how long a timestamp pulse holds the pin low, >= 1 us (10)",
    "baud": "UART baud rate (default: 115200; with mlperf=true what the official runner expects: "
            "921600 for ad01, 9600 in energy mode)",
    "main_stack_size": "CONFIG_MAIN_STACK_SIZE in bytes (4096)",
    "profile": "true: a profile build, every step of the model timed for tvmc run --profile (false)",
    "max_payload": "largest tinyengine protocol payload, 64..4096 bytes (1024)",
    "measure": "auto|true|false: measure the model's flash/RAM with arm-none-eabi-gcc (auto: when installed)",
    "west_cmd": "the west command for build/flash ('west')",
    "zephyr_base": "ZEPHYR_BASE for build/flash (default: the environment's)",
    "runner": "west flash --runner (default: the board's)",
}
ALIASES = {"zephyr_board": "board", "config_main_stack_size": "main_stack_size"}


# --------------------------------------------------------------------------- options
def parse_project_options(pairs: Sequence[str]) -> Dict[str, str]:
    """``["board=nucleo_f746zg", "mlperf=true"]`` -> dict; unknown keys are errors."""
    out: Dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = ALIASES.get(key.strip(), key.strip())
        if not sep or not key:
            raise TinyEngineError(f"--project-option '{pair}': use KEY=VALUE")
        if key not in OPTION_HELP:
            raise TinyEngineError(f"unknown project option '{key}'; options: " +
                                  "; ".join(f"{k}: {v}" for k, v in OPTION_HELP.items()))
        out[key] = value.strip()
    return out


def _bool(opts: Mapping[str, str], key: str) -> bool:
    return bool_option(opts, key, DEFAULTS.get(key, "false"))


def _int(opts: Mapping[str, str], key: str, lo: int, hi: int) -> int:
    return int_option(opts, key, DEFAULTS[key], lo, hi)


def resolve_options(opts: Mapping[str, str], meta: dict) -> dict:
    """Validated settings of a project from its options."""
    if not opts.get("board"):
        raise TinyEngineError("--project-option board=BOARD is required; boards: " + ", ".join(ZEPHYR_BOARDS))
    zb = get_zephyr_board(opts["board"])
    from .baremetal import mlperf_from_options

    ml = mlperf_from_options(opts, meta)
    energy = ml is not None and _bool(opts, "mlperf_energy")
    gpio = None
    if energy:
        gpio = _timestamp_gpio(opts.get("mlperf_timestamp_gpio", "arduino_header,13"))
    elif "mlperf_timestamp_gpio" in opts or "mlperf_timestamp_hold_us" in opts:
        raise TinyEngineError("mlperf_timestamp_gpio/mlperf_timestamp_hold_us need mlperf_energy=true")
    baud_default = mlperf_default_baud(ml.model_version, energy) if ml else int(DEFAULTS["baud"])
    measure = str(opts.get("measure", "auto")).lower()
    if measure not in ("auto", "true", "false"):
        raise TinyEngineError(f"project option measure={measure}: auto, true or false")
    return {"board": zb, "mlperf": ml, "baud": _int({"baud": str(baud_default), **opts}, "baud", 1200, 12_000_000),
            "mlperf_energy": energy, "timestamp_gpio": gpio,
            "timestamp_hold_us": _int(opts, "mlperf_timestamp_hold_us", 1, 1_000_000),
            "main_stack_size": _int(opts, "main_stack_size", 1024, 1 << 20),
            "max_payload": _int(opts, "max_payload", 64, 4096), "measure": measure,
            "profile": _bool(opts, "profile")}


def _timestamp_gpio(text: str):
    """``CONTROLLER,PIN`` (a devicetree GPIO controller or nexus label and a pin number) -> (label, pin)."""
    label, sep, pin = str(text).partition(",")
    label, pin = label.strip().lstrip("&"), pin.strip()
    if not sep or not label.replace("_", "a").isalnum() or not label[0].isalpha() or not pin.isdigit() \
            or int(pin) > 255:
        raise TinyEngineError(f"project option mlperf_timestamp_gpio={text}: use CONTROLLER,PIN with a "
                              "devicetree label and a pin number, e.g. arduino_header,13 (Arduino D7) or gpiof,13")
    return label, int(pin)


def timestamp_overlay(label: str, pin: int) -> str:
    """The devicetree fragment that gives energy mode's timestamp pin the alias the app looks for."""
    return f"""/*
 * MLPerf Tiny energy mode: the timestamp pin (generated by tvmc micro create-project from
 * --project-option mlperf_timestamp_gpio={label},{pin}). Open drain, as the EEMBC IO manager expects:
 * the firmware pulls it low for each time stamp (the falling edge is the time) and releases it.
 */
#include <zephyr/dt-bindings/gpio/gpio.h>

/ {{
\taliases {{
\t\ttinyengine-timestamp = &te_timestamp;
\t}};

\tte_timestamp_pins {{
\t\tcompatible = "gpio-leds";

\t\tte_timestamp: te_timestamp {{
\t\t\tgpios = <&{label} {pin} (GPIO_ACTIVE_HIGH | GPIO_OPEN_DRAIN)>;
\t\t}};
\t}};
}};
"""


# --------------------------------------------------------------------------- fit
def measure_sizes(project_dir: str, zb: ZephyrBoard, mlperf: Optional[MlperfOptions], max_payload: int,
                  build_dir: Optional[str] = None, profile: bool = False) -> Dict[str, Dict[str, int]]:
    """Model / server / I/O-buffer flash and RAM compiled for the board's core (arm-none-eabi-gcc)."""
    from .baremetal import measure_for_board

    tmp = None
    if build_dir is None:
        tmp = tempfile.mkdtemp(prefix="tinyengine-measure-")
        build_dir = tmp
    try:
        return measure_for_board(project_dir, zb.build_target, build_dir, mlperf=mlperf, max_payload=max_payload,
                                 profile=profile)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def zephyr_requirements(meta: dict, zb: ZephyrBoard, *, mlperf: Optional[MlperfOptions], max_payload: int,
                        main_stack_size: int, measured: Optional[Dict[str, Dict[str, int]]] = None) -> dict:
    """Flash and RAM the app needs on ``zb`` against what Zephyr leaves it, with where each figure comes from."""
    mem = meta["memory"]
    if measured:
        model_flash, model_ram = measured["model"]["flash_bytes"], measured["model"]["ram_bytes"]
        server_flash = measured["protocol"]["flash_bytes"] + measured["io"]["flash_bytes"]
        server_ram = measured["protocol"]["ram_bytes"] + measured["io"]["ram_bytes"]
        source = (f"measured: compiled for {zb.cpu}{'' if zb.fpu else ' (soft-float, as Zephyr builds it)'} with "
                  "arm-none-eabi-gcc, linked with --gc-sections")
    else:
        model_flash = mem["weights_bytes"] + RUNTIME_FLASH_ALLOWANCE
        model_ram = mem["arena_bytes"]
        server_flash = SERVER_FLASH_ESTIMATE
        server_ram = (staging_bytes(meta) + (0 if mlperf else max_payload + 11) + SERVER_RAM_ESTIMATE
                      + (mlperf.db_capacity(meta) if mlperf else 0))
        source = (f"estimated (arm-none-eabi-gcc not used): weights + {RUNTIME_FLASH_ALLOWANCE // 1024} KiB of "
                  "code, arena, staging and frame buffers")
    share_flash, share_ram = zb.share(mlperf is not None)
    measured_share = bool(share_flash and share_ram)
    flash = {"model": model_flash, "server": server_flash,
             "zephyr_allowance": share_flash + SHARE_MARGIN_FLASH if measured_share else ZEPHYR_FLASH_ALLOWANCE}
    ram = {"model": model_ram, "server": server_ram, "main_stack": main_stack_size,
           "zephyr_allowance": share_ram + SHARE_MARGIN_RAM if measured_share else ZEPHYR_RAM_ALLOWANCE}
    out = {"board": zb.zephyr_name, "sizes": source,
           "flash": {**flash, "total": sum(flash.values()), "available": zb.flash_bytes},
           "ram": {**ram, "total": sum(ram.values()), "available": zb.sram_bytes},
           "zephyr_allowances_are_estimates": not measured_share,
           "zephyr_share": (f"measured on {zb.zephyr_name}{' with mlperf=true' if mlperf else ''} "
                            f"({share_flash:,} B flash, {share_ram:,} B RAM; "
                            f"+{SHARE_MARGIN_FLASH} B / +{SHARE_MARGIN_RAM} B margin): {SHARE_METHOD}"
                            if measured_share else
                            "estimated (not measured for this board): hello_world's 18 KB of text + 6 KiB, "
                            "ISR and idle stacks and kernel objects x2")}
    out["fits"] = out["flash"]["total"] <= zb.flash_bytes and out["ram"]["total"] <= zb.sram_bytes
    return out


def fit_problems(req: dict, meta: dict) -> List[str]:
    problems = []
    r, f = req["ram"], req["flash"]
    how = "estimate" if req.get("zephyr_allowances_are_estimates", True) else f"measured on {req['board']}"
    if r["total"] > r["available"]:
        mem = meta["memory"]
        peak = ""
        if mem.get("peak_op_index") is not None and meta.get("ops"):
            op = meta["ops"][mem["peak_op_index"]]
            peak = f"; the arena's peak is at op #{mem['peak_op_index']} {op['type']} '{op['name']}'"
        problems.append(
            f"RAM: model {r['model']:,} B (arena {mem['arena_bytes']:,} B) + server {r['server']:,} B + main stack "
            f"{r['main_stack']:,} B + Zephyr {r['zephyr_allowance']:,} B ({how}) = {r['total']:,} B, "
            f"{r['total'] - r['available']:,} B over the {r['available']:,} B zephyr,sram region{peak}")
    if f["total"] > f["available"]:
        problems.append(
            f"flash: model {f['model']:,} B (weights {meta['memory']['weights_bytes']:,} B) + server "
            f"{f['server']:,} B + Zephyr {f['zephyr_allowance']:,} B ({how}) = {f['total']:,} B, "
            f"{f['total'] - f['available']:,} B over the {f['available']:,} B of flash")
    return problems


# --------------------------------------------------------------------------- files
def zephyr_app_dir() -> str:
    """The Zephyr application template: $TINYENGINE_ZEPHYR_APP_DIR, the package's
    ``_zephyr_app`` or ``zephyr_app/`` of the checkout."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for c in (os.environ.get("TINYENGINE_ZEPHYR_APP_DIR", ""), os.path.join(here, "_zephyr_app"),
              os.path.normpath(os.path.join(here, "..", "..", "zephyr_app"))):
        if c and os.path.isfile(os.path.join(c, "CMakeLists.txt")) and os.path.isdir(os.path.join(c, "boards")):
            return c
    raise TinyEngineError("cannot find the Zephyr application template (zephyr_app/); "
                          "set TINYENGINE_ZEPHYR_APP_DIR")


#: Shared firmware sources copied into the app's tinyengine/ directory.
SHARED_SOURCES = ("include/te_protocol.h", "include/te_mlperf.h", "src/te_protocol.c", "src/te_mlperf.c")


def _substitute(text: str, values: Mapping[str, str], what: str) -> str:
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    if "@TE_" in text:
        raise TinyEngineError(f"template {what}: unknown placeholder near '{text[text.index('@TE_'):][:30]}'")
    return text


def _open_compiled(path: str, tmp: str) -> str:
    from ..runtime.project import open_project

    return open_project(path, tmp)


def previous_zephyr_project_reason(folder: str) -> Optional[str]:
    """None when ``folder`` holds a Zephyr project written by ``tvmc micro
    create-project`` and nothing else (a west build/ tree aside), else why not."""
    from ..output_paths import GENERATOR, describe_unlisted, not_ours, read_manifest, unlisted_files

    info = read_manifest(os.path.join(folder, "project.json"))
    if info is None or info.get("generator") != GENERATOR or not isinstance(info.get("files"), list):
        return not_ours("Zephyr project (no project.json of ours listing its files)")
    listed = [f for f in info["files"] if isinstance(f, str)]
    return describe_unlisted(unlisted_files(folder, listed), "Zephyr project")


def _readme(meta: dict, settings: dict, req: dict) -> str:
    zb: ZephyrBoard = settings["board"]
    ml: Optional[MlperfOptions] = settings["mlperf"]
    name = meta["model"]
    proto = (f"the MLPerf Tiny / EEMBC benchmark protocol (model '{ml.model_version}', input {ml.input_mode}, "
             f"results {ml.results})" if ml else "the tinyengine benchmark protocol")
    run = (f"python -m tinyengine_tvm.micro.mlperf_host --port /dev/ttyACM0 --baud {settings['baud']} "
           f"--project model --mode p" if ml else
           f"tvmc run model --device=serial --port /dev/ttyACM0 --baud {settings['baud']} --number 10 --repeat 3 "
           "--print-time")
    f, r = req["flash"], req["ram"]
    share = "estimate" if req["zephyr_allowances_are_estimates"] else "measured"
    where = ("on UART0 in QEMU (qemu-system-arm -machine " + str(zb.qemu_machine) if zb.emulated
             else "on the board's ST-LINK virtual COM port (" + zb.uart)
    return f"""# {name} on {zb.board} (Zephyr)

Generated by `tvmc micro create-project`: a standalone Zephyr 4.x application
that runs the model `{name}` and serves {proto}
{where}, {settings['baud']} baud).

```sh
west build -b {zb.zephyr_name} .        # in a Zephyr workspace (ZEPHYR_BASE set)
west flash
{run}
```

Any board with a file in `boards/` builds the same way (`west build -b BOARD -p`).

| | flash | RAM |
|---|---:|---:|
| model (code, weights / arena) | {f['model']:,} B | {r['model']:,} B |
| benchmark server (code / buffers) | {f['server']:,} B | {r['server']:,} B |
| main stack (CONFIG_MAIN_STACK_SIZE) | | {r['main_stack']:,} B |
| Zephyr itself ({share}) | {f['zephyr_allowance']:,} B | {r['zephyr_allowance']:,} B |
| total | {f['total']:,} B | {r['total']:,} B |
| {zb.zephyr_name} | {f['available']:,} B | {r['available']:,} B |

Model and server sizes: {req['sizes']}. Zephyr's share: {req['zephyr_share']}.

Layout: `CMakeLists.txt`, `prj.conf`, `boards/<board>.overlay|.conf` (the UART
and baud rate, caches), `src/main.c` (Zephyr port: UART polling, DWT cycle
counter, stack painting, reboot), `src/te_model_desc.c` (the model's tensors),
`tinyengine/` (the protocol servers, shared with the bare-metal firmware),
`model/` (the compiled model and the kernels it uses: a library of the app).
"""


def create_project(out_dir: str, compiled: str, platform: str = "zephyr",
                   options: Optional[Union[Mapping[str, str], Sequence[str]]] = None, *, force: bool = False,
                   measure_build_dir: Optional[str] = None) -> dict:
    """Write the Zephyr application of a compiled model into ``out_dir``;
    returns what was decided (board, options, sizes). Refuses, before writing
    anything, a model that does not fit the board (MemoryBudgetError)."""
    if platform not in PLATFORMS:
        raise TinyEngineError(f"platform '{platform}': only {', '.join(PLATFORMS)} is supported")
    opts = parse_project_options(options) if isinstance(options, (list, tuple)) else dict(options or {})
    opts = {ALIASES.get(k, k): v for k, v in opts.items()}
    for k in opts:
        if k not in OPTION_HELP:
            raise TinyEngineError(f"unknown project option '{k}'")
    from ..output_paths import GENERATOR, check_output_dir, staged_dir

    def replaceable(folder):
        why = previous_zephyr_project_reason(folder)
        return why if why is not None or force else "holds a previous Zephyr project (pass --force to replace it)"

    target = check_output_dir(out_dir, "project directory", replaceable, keep=[compiled])
    out_dir = target.path
    template = zephyr_app_dir()
    from ..runtime.firmware import firmware_dir, missing_tools

    fw = firmware_dir()
    with tempfile.TemporaryDirectory(prefix="tinyengine-project-") as tmp:
        src = _open_compiled(compiled, os.path.join(tmp, "compiled"))
        meta = read_metadata(src)
        settings = resolve_options(opts, meta)
        zb: ZephyrBoard = settings["board"]
        ml: Optional[MlperfOptions] = settings["mlperf"]

        tools = not [t for t in missing_tools() if "qemu" not in t]
        measure = settings["measure"]
        if measure == "true" and not tools:
            raise TinyEngineError("measure=true needs arm-none-eabi-gcc (scripts/install_arm_toolchain.sh)")
        measured = None
        if zb.info is None:  # mps2/an385: no Cortex-M3 in the board table, nothing to compile for
            if measure == "true":
                raise TinyEngineError(f"measure=true: {zb.zephyr_name} ({zb.cpu}) has no bare-metal build flags "
                                      "here (the board table has no Cortex-M3); use measure=auto or false")
        elif measure == "true" or (measure == "auto" and tools):
            measured = measure_sizes(src, zb, ml, settings["max_payload"], measure_build_dir,
                                     profile=settings["profile"])
        req_kwargs = dict(mlperf=ml, max_payload=settings["max_payload"], main_stack_size=settings["main_stack_size"],
                          measured=measured)
        req = zephyr_requirements(meta, zb, **req_kwargs)
        problems = fit_problems(req, meta)
        if problems:
            raise MemoryBudgetError(f"{meta['model']} does not fit {zb.zephyr_name} ({zb.board}) under Zephyr: "
                                    + "; ".join(problems))

        stage = os.path.join(tmp, "app")
        values = {"TE_MODEL": meta["model"], "TE_ZEPHYR_BOARD": zb.zephyr_name, "TE_BAUD": settings["baud"],
                  "TE_MLPERF": 1 if ml else 0, "TE_MAX_PAYLOAD": settings["max_payload"],
                  "TE_MLPERF_ENERGY": 1 if settings["mlperf_energy"] else 0,
                  "TE_MLPERF_TIMESTAMP_HOLD_US": settings["timestamp_hold_us"],
                  "TE_MAIN_STACK_SIZE": settings["main_stack_size"], "TE_PROFILE": 1 if settings["profile"] else 0}
        for root, _, files in os.walk(template):
            rel = os.path.relpath(root, template)
            for f in files:
                if f == "README.md" and rel == ".":
                    continue  # the template's own documentation
                dst_dir = os.path.normpath(os.path.join(stage, rel))
                os.makedirs(dst_dir, exist_ok=True)
                text = open(os.path.join(root, f)).read()
                with open(os.path.join(dst_dir, f), "w") as fh:
                    fh.write(_substitute(text, values, os.path.join(rel, f)))
        for rel in SHARED_SOURCES:
            dst = os.path.join(stage, "tinyengine", rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(os.path.join(fw, rel), dst)
        model_dir = os.path.join(stage, "model")
        shutil.copytree(src, model_dir, ignore=shutil.ignore_patterns("build", "*.o", "__pycache__"))
        write_model_desc(model_dir, os.path.join(stage, "src"), ml)
        if settings["mlperf_energy"]:
            with open(os.path.join(stage, "mlperf_timestamp.overlay"), "w") as fh:
                fh.write(timestamp_overlay(*settings["timestamp_gpio"]))
        fits = {}
        for other in ZEPHYR_BOARDS.values():
            o = zephyr_requirements(meta, other, **req_kwargs)
            fits[other.zephyr_name] = {"fits": o["fits"], "flash_total": o["flash"]["total"],
                                       "flash_available": o["flash"]["available"], "ram_total": o["ram"]["total"],
                                       "ram_available": o["ram"]["available"]}
        info = {"generator": GENERATOR, "platform": platform, "model": meta["model"], "board": zb.zephyr_name, "board_name": zb.board,
                "options": {k: str(v) for k, v in {**DEFAULTS, "baud": settings["baud"], **opts}.items()},
                "mlperf": vars(ml) if ml else None, "baud": settings["baud"],
                "mlperf_energy": settings["mlperf_energy"],
                "mlperf_timestamp_gpio": ",".join(map(str, settings["timestamp_gpio"])) if settings["timestamp_gpio"]
                else None,
                "main_stack_size": settings["main_stack_size"], "max_payload": settings["max_payload"],
                "requirements": req, "other_boards": fits,
                "other_boards_note": f"sizes measured for {zb.cpu}; other cores differ slightly"}
        with open(os.path.join(stage, "README.md"), "w") as fh:
            fh.write(_readme(meta, settings, req))
        info["files"] = sorted(os.path.relpath(os.path.join(r, f), stage)
                               for r, _, fs in os.walk(stage) for f in fs) + ["project.json"]
        with open(os.path.join(stage, "project.json"), "w") as fh:
            json.dump(info, fh, indent=2)
        with staged_dir(target) as final:
            for entry in os.listdir(stage):
                shutil.move(os.path.join(stage, entry), os.path.join(final, entry))
    info["project_dir"] = out_dir
    return info


# --------------------------------------------------------------------------- build / flash
def _project_info(project_dir: str) -> dict:
    path = os.path.join(project_dir, "project.json")
    if not os.path.isfile(path):
        raise TinyEngineError(f"{project_dir}: not a project of tvmc micro create-project (no project.json)")
    with open(path) as f:
        return json.load(f)


def project_workspace(options: Mapping[str, str], info: Optional[dict] = None,
                      workspace: Optional[str] = None) -> ZephyrWorkspace:
    """The Zephyr workspace build/flash use: ``workspace`` (--zephyr-workspace), the
    zephyr_base option or $ZEPHYR_BASE (see :func:`.zephyr_workspace.find_workspace`)."""
    stored = (info or {}).get("options", {})
    west = options.get("west_cmd") or stored.get("west_cmd") or "west"
    return find_workspace(workspace, options.get("zephyr_base") or stored.get("zephyr_base"), west)


def build_project(project_dir: str, platform: str = "zephyr", options: Optional[Mapping[str, str]] = None,
                  force: bool = False, workspace: Optional[str] = None) -> str:
    """Build the project for its board (``west build -b BOARD -d PROJECT/build PROJECT``,
    or cmake+ninja without west); returns the build directory."""
    if platform not in PLATFORMS:
        raise TinyEngineError(f"platform '{platform}': only {', '.join(PLATFORMS)} is supported")
    project_dir = os.path.abspath(project_dir)
    info = _project_info(project_dir)
    options = dict(options or {})
    board = get_zephyr_board(options.get("board") or info["board"]).zephyr_name
    try:
        ws = project_workspace(options, info, workspace)
    except TinyEngineError as exc:
        raise TinyEngineError(f"cannot build {project_dir}: {exc}\n  It is a standard Zephyr application: in a "
                              f"Zephyr workspace run\n    west build -b {board} -d {project_dir}/build "
                              f"{project_dir}") from None
    for note in ws.notes:
        print(f"note: {note}", flush=True)
    build_dir = os.path.join(project_dir, "build")
    build_app(ws, project_dir, board, build_dir, pristine=force)
    return build_dir


def flash_project(project_dir: str, platform: str = "zephyr", options: Optional[Mapping[str, str]] = None,
                  workspace: Optional[str] = None) -> None:
    """``west flash -d PROJECT/build`` (``--runner`` from the options)."""
    if platform not in PLATFORMS:
        raise TinyEngineError(f"platform '{platform}': only {', '.join(PLATFORMS)} is supported")
    project_dir = os.path.abspath(project_dir)
    info = _project_info(project_dir)
    options = dict(options or {})
    zb = get_zephyr_board(options.get("board") or info["board"])
    if zb.emulated:
        raise TinyEngineError(f"{zb.zephyr_name} is emulated: nothing to flash; run the model on it with "
                              f"tvmc run COMPILED --device=qemu --firmware=zephyr --board {zb.board}")
    try:
        ws = project_workspace(options, info, workspace)
    except TinyEngineError as exc:
        raise TinyEngineError(f"cannot flash {project_dir}: {exc}\n  With a Zephyr workspace: "
                              f"west flash -d {project_dir}/build") from None
    if ws.west is None:
        raise TinyEngineError(f"cannot flash {project_dir}: flashing needs west and a west workspace (its "
                              "runners drive the debug probe): pip install west, and use a workspace with .west/ "
                              + (f"({'; '.join(ws.notes)})" if ws.notes else ""))
    build_dir = os.path.join(project_dir, "build")
    if not os.path.isdir(build_dir):
        raise TinyEngineError(f"{build_dir} does not exist: run 'tvmc micro build {project_dir} zephyr' first")
    cmd = [*ws.west, "flash", "-d", build_dir]
    runner = options.get("runner") or info.get("options", {}).get("runner")
    if runner:
        cmd += ["--runner", runner]
    run_logged(cmd, ws.env, "west flash", cwd=ws.top)
