"""The generated Zephyr application of a compiled model, built in a Zephyr
workspace with a cache keyed by content.

``tvmc micro create-project`` writes the app (in a scratch directory); it is
built (west or cmake+ninja, :mod:`.zephyr_workspace`) unless an ELF of exactly
the same app files, board and Zephyr is in the cache: ELFs are stored by the
SHA-256 of those (``$TINYENGINE_ZEPHYR_CACHE``, default
``~/.cache/tinyengine-tvm/zephyr-builds``). Each board keeps one build
directory whose app sources are replaced in place, changed files only, so
another model, or the same model with ``mlperf=true``, recompiles only what
differs: Zephyr's kernel and drivers are compiled once per board.

Used by ``tvmc run --device=qemu --firmware=zephyr`` (:mod:`.zephyr_qemu`) and
by the fit check against real builds (:mod:`.zephyr_fit`).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from typing import Mapping, Optional, Tuple

from .zephyr_boards import get_zephyr_board
from .zephyr_workspace import ZephyrWorkspace, build_app, find_workspace


#: Warnings Zephyr 4.3.0 prints in every build, whatever the app (not ours to fix).
ZEPHYR_OWN_WARNINGS = ("kernel/sched.c",)


def build_warnings(log: str) -> list:
    """The compiler and Kconfig warnings of a build log, less Zephyr's own (:data:`ZEPHYR_OWN_WARNINGS`)."""
    with open(log, errors="replace") as f:
        return [line.rstrip() for line in f
                if "warning:" in line.lower() and not any(w in line for w in ZEPHYR_OWN_WARNINGS)]


def zephyr_cache_dir() -> str:
    """Where Zephyr builds are cached: $TINYENGINE_ZEPHYR_CACHE or ~/.cache/tinyengine-tvm/zephyr-builds."""
    return os.environ.get("TINYENGINE_ZEPHYR_CACHE") or os.path.expanduser("~/.cache/tinyengine-tvm/zephyr-builds")


def _tree_digest(root: str, extra: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for k in sorted(extra):
        h.update(f"{k}={extra[k]}\0".encode())
    for dirpath, dirnames, files in os.walk(root):
        dirnames.sort()
        for f in sorted(files):
            path = os.path.join(dirpath, f)
            h.update(os.path.relpath(path, root).encode() + b"\0")
            with open(path, "rb") as fh:
                h.update(fh.read())
            h.update(b"\0")
    return h.hexdigest()


def _sync_tree(src: str, dst: str) -> None:
    """Make ``dst`` a copy of ``src``, writing only changed files (so ninja rebuilds only those)."""
    wanted = set()
    for dirpath, _, files in os.walk(src):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            wanted.add(rel)
            target = os.path.join(dst, rel)
            with open(os.path.join(src, rel), "rb") as fh:
                data = fh.read()
            if os.path.isfile(target):
                with open(target, "rb") as fh:
                    if fh.read() == data:
                        continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(data)
    for dirpath, _, files in os.walk(dst, topdown=False):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), dst)
            if rel not in wanted:
                os.remove(os.path.join(dst, rel))
        if dirpath != dst and not os.listdir(dirpath):
            os.rmdir(dirpath)


@contextlib.contextmanager
def _locked(path: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_zephyr_elf(compiled: str, board: str, *, workspace: Optional[str] = None,
                     cache_dir: Optional[str] = None, options: Optional[Mapping[str, str]] = None,
                     ws: Optional[ZephyrWorkspace] = None) -> Tuple[str, dict]:
    """The Zephyr ELF of a compiled model for ``board`` (built, or found in the cache).

    Returns ``(elf path, info)``: info holds the project's ``project.json``
    (its fit prediction under ``requirements``), the measured ``sizes``
    (:func:`.zephyr_share.measure_build`), the build's ``warnings``, ``cached``,
    ``key`` and ``build_dir``: the board's build directory (configured for
    the board, its ``zephyr/runners.yaml`` what ``west flash -d`` reads; it
    holds the last app built, not necessarily this ELF's). Zephyr's
    ``zephyr.hex`` / ``zephyr.bin`` of a build are kept beside the ELF
    (same name, ``.hex`` / ``.bin``) when the board's build makes them.
    ``options``: create-project options besides the board."""
    from .project import create_project
    from .zephyr_share import measure_build

    zb = get_zephyr_board(board)
    ws = ws or find_workspace(workspace)
    cache = os.path.abspath(cache_dir or zephyr_cache_dir())
    board_dir = os.path.join(cache, zb.file_stem)
    with tempfile.TemporaryDirectory(prefix="tinyengine-zephyr-") as tmp:
        app = os.path.join(tmp, "app")
        opts = {"measure": "auto", **dict(options or {}), "board": zb.zephyr_name}
        info = create_project(app, compiled, "zephyr", opts, measure_build_dir=os.path.join(cache, "measure"))
        info.pop("project_dir", None)
        version = ""
        vfile = os.path.join(ws.zephyr_base, "VERSION")
        if os.path.isfile(vfile):
            with open(vfile) as fh:
                version = fh.read()
        key = _tree_digest(app, {"board": zb.zephyr_name, "zephyr_base": ws.zephyr_base, "zephyr_version": version,
                                 "toolchain": ws.env.get("ZEPHYR_TOOLCHAIN_VARIANT", "")})
        store = os.path.join(board_dir, "elf")
        elf, meta_path = os.path.join(store, f"{key[:24]}.elf"), os.path.join(store, f"{key[:24]}.json")
        build_dir = os.path.join(board_dir, "build")
        if os.path.isfile(elf) and os.path.isfile(meta_path):
            with open(meta_path) as fh:
                return elf, {**json.load(fh), "cached": True, "build_dir": build_dir}
        with _locked(os.path.join(board_dir, "lock")):
            work_app = os.path.join(board_dir, "app")
            _sync_tree(app, work_app)
            log = os.path.join(board_dir, "build.log")
            with open(log, "w"):
                pass
            print(f"building the Zephyr app for {zb.zephyr_name} ({ws.tool}; log {log})", flush=True)
            built = build_app(ws, work_app, zb.zephyr_name, build_dir, log=log)
            sizes = measure_build(build_dir)
            os.makedirs(store, exist_ok=True)
            result = {"project": info, "sizes": sizes, "key": key, "board": zb.zephyr_name,
                      "warnings": build_warnings(log)}
            # The flash images the board's build made, for flashing a cached ELF later (tvmc tune --runner serial).
            for ext in (".hex", ".bin"):
                made = built[:-len(".elf")] + ext
                if os.path.isfile(made):
                    shutil.copyfile(made, elf[:-len(".elf")] + ext + ".tmp")
                    os.replace(elf[:-len(".elf")] + ext + ".tmp", elf[:-len(".elf")] + ext)
            tmp_elf = elf + ".tmp"
            shutil.copyfile(built, tmp_elf)
            with open(meta_path + ".tmp", "w") as fh:
                json.dump(result, fh, indent=1)
            os.replace(tmp_elf, elf)
            os.replace(meta_path + ".tmp", meta_path)
    return elf, {**result, "cached": False, "build_dir": build_dir}
