"""A Zephyr workspace on this machine, and building an application in it.

The workspace is found through, in this order, ``--zephyr-workspace DIR``
(the directory holding ``env.sh`` and/or ``zephyr/``, or ``zephyr/`` itself),
the project option ``zephyr_base=`` or the environment's ``ZEPHYR_BASE``.
When the workspace has an ``env.sh`` (as the offline workspace of
``../shared/zephyr`` does) it is sourced, so its module list and toolchain
settings apply. Without a Zephyr SDK, Debian's ``arm-none-eabi-gcc`` is used
(ZEPHYR_TOOLCHAIN_VARIANT=gnuarmemb).

Builds run ``west build`` when west is installed and the workspace is a west
workspace (``.west/`` beside ``zephyr/``: west needs its manifest for the
``build`` command), else ``cmake -GNinja`` then ``ninja``. Whatever is
missing is named in one TinyEngineError (tvmc exits with status 2).
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

from ..errors import TinyEngineError

SETUP_HINT = ("a Zephyr 4.x workspace: bash ../shared/zephyr/setup.sh (offline) or west init -m "
              "https://github.com/zephyrproject-rtos/zephyr --mr v4.3.0 ~/zephyrproject && cd ~/zephyrproject "
              "&& west update hal_stm32 cmsis_6")


@dataclass
class ZephyrWorkspace:
    """Where Zephyr is and how to build with it."""

    top: str                     #: the workspace directory (holds zephyr/)
    zephyr_base: str             #: its zephyr/ directory
    env: Dict[str, str]          #: the environment builds run with
    west: Optional[List[str]]    #: the west command, when builds use west
    notes: List[str] = field(default_factory=list)

    @property
    def tool(self) -> str:
        """``west`` or ``cmake+ninja``: what builds run."""
        return "west" if self.west else "cmake+ninja"


def _is_zephyr_base(d: str) -> bool:
    return os.path.isfile(os.path.join(d, "VERSION")) and os.path.isdir(os.path.join(d, "cmake"))


def _source_env_sh(path: str, base_env: Mapping[str, str]) -> Dict[str, str]:
    """The environment after ``. env.sh`` in bash."""
    try:
        proc = subprocess.run(["bash", "-c", '. "$1" >/dev/null 2>&1 && env -0', "env.sh", path],
                              capture_output=True, env=dict(base_env), timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TinyEngineError(f"cannot source {path}: {exc}") from None
    if proc.returncode != 0:
        raise TinyEngineError(f"sourcing {path} failed (status {proc.returncode})")
    out = {}
    for item in proc.stdout.split(b"\0"):
        k, sep, v = item.decode(errors="replace").partition("=")
        if sep and k:
            out[k] = v
    return out


def _modules(top: str) -> List[str]:
    """Module directories (with zephyr/module.yml) under ``top/modules``, for builds without west."""
    found = []
    root = os.path.join(top, "modules")
    for dirpath, dirnames, _ in os.walk(root):
        if os.path.isfile(os.path.join(dirpath, "zephyr", "module.yml")):
            found.append(dirpath)
            dirnames[:] = []
        elif dirpath.count(os.sep) - root.count(os.sep) >= 2:
            dirnames[:] = []
    return sorted(found)


def find_workspace(workspace: Optional[str] = None, zephyr_base: Optional[str] = None,
                   west_cmd: str = "west", environ: Optional[Mapping[str, str]] = None) -> ZephyrWorkspace:
    """The workspace from ``workspace`` (a directory), else ``zephyr_base``, else $ZEPHYR_BASE.

    Raises TinyEngineError naming everything missing (workspace, cmake,
    ninja, dtc, a toolchain)."""
    env = dict(os.environ if environ is None else environ)
    if workspace:
        d = os.path.abspath(os.path.expanduser(workspace))
        if not os.path.isdir(d):
            raise TinyEngineError(f"--zephyr-workspace {workspace}: no such directory (wanted {SETUP_HINT})")
        if _is_zephyr_base(d):
            top = os.path.dirname(d)
        elif os.path.isfile(os.path.join(d, "env.sh")) or os.path.isdir(os.path.join(d, "zephyr")):
            top = d
        else:
            raise TinyEngineError(f"--zephyr-workspace {workspace}: holds neither env.sh nor zephyr/ "
                                  f"(wanted {SETUP_HINT})")
        origin = f"--zephyr-workspace {workspace}"
    else:
        base = zephyr_base or env.get("ZEPHYR_BASE", "")
        if not base:
            raise TinyEngineError("no Zephyr workspace: ZEPHYR_BASE is not set and no --zephyr-workspace DIR "
                                  f"was given (the directory holding env.sh or zephyr/; {SETUP_HINT})")
        if not os.path.isdir(base):
            raise TinyEngineError(f"ZEPHYR_BASE={base} is not a directory")
        top = os.path.dirname(os.path.abspath(base))
        origin = f"ZEPHYR_BASE={base}"
    env_sh = os.path.join(top, "env.sh")
    if os.path.isfile(env_sh):
        env = _source_env_sh(env_sh, env)
    if workspace or "ZEPHYR_BASE" not in env:
        env["ZEPHYR_BASE"] = os.path.join(top, "zephyr")
    base = env["ZEPHYR_BASE"]
    problems = []
    if not os.path.isdir(base):
        problems.append(f"{origin}: {base} does not exist")
    notes = []

    west_argv = shlex.split(west_cmd or "west")
    path = env.get("PATH", "")
    has_west = bool(west_argv) and shutil.which(west_argv[0], path=path) is not None
    west = west_argv if has_west and os.path.isdir(os.path.join(top, ".west")) else None
    if has_west and west is None:
        notes.append(f"{top} is not a west workspace (no .west/): building with cmake+ninja")
    needed = ["cmake", "dtc"] + ([] if west else ["ninja"])
    for tool in needed:
        if shutil.which(tool, path=path) is None:
            pkg = {"dtc": "device-tree-compiler", "ninja": "ninja-build"}.get(tool, tool)
            problems.append(f"'{tool}' is not installed (apt-get install {pkg})")
    if west is None and "ZEPHYR_MODULES" not in env:
        mods = _modules(top)
        if mods:
            env["ZEPHYR_MODULES"] = ";".join(mods)
    if not env.get("ZEPHYR_TOOLCHAIN_VARIANT") and not env.get("ZEPHYR_SDK_INSTALL_DIR"):
        gcc = shutil.which("arm-none-eabi-gcc", path=path)
        if gcc:
            env["ZEPHYR_TOOLCHAIN_VARIANT"] = "gnuarmemb"
            env["GNUARMEMB_TOOLCHAIN_PATH"] = os.path.dirname(os.path.dirname(gcc))
        elif not _has_sdk(env):
            problems.append("no toolchain: arm-none-eabi-gcc is not installed (apt-get install gcc-arm-none-eabi "
                            "libnewlib-arm-none-eabi) and no Zephyr SDK is set up (ZEPHYR_SDK_INSTALL_DIR)")
    if problems:
        raise TinyEngineError("the Zephyr workspace cannot build: " + "; ".join(problems))
    return ZephyrWorkspace(top, base, env, west, notes)


def _has_sdk(env: Mapping[str, str]) -> bool:
    return any(os.path.isdir(os.path.expanduser(d)) for d in ("~/zephyr-sdk", "/opt/zephyr-sdk")) or \
        bool(env.get("ZEPHYR_SDK_INSTALL_DIR"))


def _cached_board(build_dir: str) -> Optional[str]:
    path = os.path.join(build_dir, "CMakeCache.txt")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        for line in f:
            if line.startswith(("BOARD:", "CACHED_BOARD:")):
                return line.split("=", 1)[1].strip()
    return None


def run_logged(cmd: List[str], env: Mapping[str, str], what: str, *, cwd: Optional[str] = None,
               log: Optional[str] = None) -> None:
    """Run ``cmd``; its output goes to the terminal, or to ``log`` (its tail is shown on failure)."""
    if log is None:
        print("running: " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    try:
        if log is None:
            rc = subprocess.run(cmd, env=dict(env), cwd=cwd).returncode
        else:
            with open(log, "a") as fh:
                fh.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
                fh.flush()
                rc = subprocess.run(cmd, env=dict(env), cwd=cwd, stdout=fh, stderr=subprocess.STDOUT).returncode
    except OSError as exc:
        raise TinyEngineError(f"{what}: cannot run {cmd[0]}: {exc}") from None
    if rc != 0:
        tail = ""
        if log is not None:
            with open(log, errors="replace") as fh:
                tail = "\n" + "".join(fh.readlines()[-40:])
        raise TinyEngineError(f"{what} failed with status {rc}" + (f" (log: {log}){tail}" if log
                                                                      else " (its output is above)"))


def build_app(ws: ZephyrWorkspace, app_dir: str, board: str, build_dir: str, *, pristine: bool = False,
              log: Optional[str] = None) -> str:
    """Build the Zephyr application ``app_dir`` for ``board`` into ``build_dir``; returns zephyr.elf.

    ``pristine``: start from an empty build directory (also done when the
    directory was configured for another board)."""
    app_dir, build_dir = os.path.abspath(app_dir), os.path.abspath(build_dir)
    if ws.west:
        run_logged([*ws.west, "build", "-b", board, "-d", build_dir, "-p", "always" if pristine else "auto",
                    app_dir], ws.env, "west build", cwd=ws.top, log=log)
    else:
        cached = _cached_board(build_dir)
        if cached is not None and (pristine or cached != board):
            shutil.rmtree(build_dir)
        elif pristine and os.path.isdir(build_dir) and os.listdir(build_dir):
            raise TinyEngineError(f"{build_dir} is not a CMake build directory: not removing it for a "
                                  "pristine build")
        if not os.path.isfile(os.path.join(build_dir, "build.ninja")):
            run_logged(["cmake", "-GNinja", "-S", app_dir, "-B", build_dir, f"-DBOARD={board}"], ws.env,
                       "cmake (Zephyr configure)", log=log)
        run_logged(["ninja", "-C", build_dir], ws.env, "ninja (Zephyr build)", log=log)
    elf = os.path.join(build_dir, "zephyr", "zephyr.elf")
    if not os.path.isfile(elf):
        raise TinyEngineError(f"the build finished without {elf}")
    return elf
