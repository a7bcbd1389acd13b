"""Flashing a built Zephyr application onto a board: ``west flash``, or a command of the user's.

``tvmc tune --runner serial`` builds every candidate configuration with the
content-keyed cache (:func:`.zephyr_build.build_zephyr_elf`) and flashes it
before measuring it. What it flashes is a :class:`FirmwareImage`; a flash
step is any callable taking one (:data:`FlashFn`):

- :func:`west_flasher` (the default): what ``tvmc micro flash`` does,
  ``west flash -d BUILD_DIR``, with ``--elf-file`` / ``--hex-file`` /
  ``--bin-file`` naming the candidate's images (the board's build directory
  holds the last app built, which need not be this cached one; west's own
  help warns that not every runner honours these overrides: with one that
  does not, give ``--flash-command``);
- :func:`command_flasher`: the user's command line (``--flash-command``) with
  the placeholders of :data:`PLACEHOLDERS` filled in, run without a shell.

Neither is exercised against a real probe here (no board on the machines the
tests run on); the tests replace the flash step by one that restarts QEMU.
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Callable, List, Mapping, Optional

from ..errors import TinyEngineError, UsageError
from .zephyr_workspace import ZephyrWorkspace, run_logged

#: ``--flash-command`` placeholders and what they become.
PLACEHOLDERS = {
    "elf": "the candidate's zephyr.elf",
    "hex": "its Intel HEX image",
    "bin": "its raw binary image (from flash start)",
    "build_dir": "the board's Zephyr build directory (what west flash -d takes)",
    "board": "the Zephyr board name (e.g. nucleo_f746zg)",
}


@dataclass(frozen=True)
class FirmwareImage:
    """A candidate's Zephyr application, built: what a flash step writes to the board."""

    elf: str
    hex: str
    bin: str
    build_dir: str   #: the board's Zephyr build directory (runners.yaml; holds the last app built)
    board: str       #: Zephyr board name

    def fields(self) -> dict:
        """The values of the ``--flash-command`` placeholders."""
        return {"elf": self.elf, "hex": self.hex, "bin": self.bin, "build_dir": self.build_dir, "board": self.board}


#: A flash step: writes the image to the board, raises on failure (any exception
#: becomes that candidate's error in the tuning records).
FlashFn = Callable[[FirmwareImage], None]


def _objcopy(elf: str, fmt: str, out: str, env: Optional[Mapping[str, str]] = None) -> None:
    """``arm-none-eabi-objcopy -O fmt`` (the sections Zephyr's own hex/bin drop, dropped)."""
    path = (env or os.environ).get("PATH", os.environ.get("PATH", ""))
    tool = None
    gnuarm = (env or {}).get("GNUARMEMB_TOOLCHAIN_PATH")
    if gnuarm and os.path.isfile(os.path.join(gnuarm, "bin", "arm-none-eabi-objcopy")):
        tool = os.path.join(gnuarm, "bin", "arm-none-eabi-objcopy")
    tool = tool or shutil.which("arm-none-eabi-objcopy", path=path)
    if tool is None:
        raise TinyEngineError(f"cannot make {out}: arm-none-eabi-objcopy is not installed")
    tmp = out + ".tmp"
    proc = subprocess.run([tool, "-O", fmt, "-R", ".comment", "-R", "COMMON", "-R", ".eh_frame", elf, tmp],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise TinyEngineError(f"objcopy -O {fmt} {elf} failed: {proc.stderr.strip()[-400:]}")
    os.replace(tmp, out)


def firmware_image(elf: str, build_dir: str, board: str, env: Optional[Mapping[str, str]] = None) -> FirmwareImage:
    """The image of a built (or cached) ELF: its ``.hex`` / ``.bin`` beside it, the
    build's own where the build made them (:func:`.zephyr_build.build_zephyr_elf`
    keeps them), else made from the ELF with objcopy."""
    stem = elf[:-len(".elf")] if elf.endswith(".elf") else elf
    images = {}
    for ext, fmt in ((".hex", "ihex"), (".bin", "binary")):
        path = stem + ext
        if not os.path.isfile(path):
            _objcopy(elf, fmt, path, env)
        images[ext] = path
    return FirmwareImage(os.path.abspath(elf), os.path.abspath(images[".hex"]), os.path.abspath(images[".bin"]),
                         os.path.abspath(build_dir), board)


def west_flasher(ws: ZephyrWorkspace, runner: Optional[str] = None) -> FlashFn:
    """``west flash -d BUILD_DIR --elf-file ELF --hex-file HEX --bin-file BIN [--runner R]``
    in the workspace, as ``tvmc micro flash`` runs it. Refused (UsageError) where
    the workspace is not a west workspace: west's runners drive the probe."""
    if ws.west is None:
        raise UsageError("flashing with west needs west and a west workspace (.west/ beside zephyr/; "
                         + ("; ".join(ws.notes) + "; " if ws.notes else "")
                         + "or give --flash-command)")

    def flash(image: FirmwareImage) -> None:
        if not os.path.isfile(os.path.join(image.build_dir, "zephyr", "runners.yaml")):
            raise TinyEngineError(f"{image.build_dir} has no zephyr/runners.yaml: west flash needs the board's "
                                  "Zephyr build directory")
        # --no-rebuild: west flash would otherwise first rebuild the board's build directory, which holds
        # whichever app was built last, not necessarily this (cached) image's.
        cmd = [*ws.west, "flash", "-d", image.build_dir, "--no-rebuild", "--elf-file", image.elf,
               "--hex-file", image.hex, "--bin-file", image.bin] + (["--runner", runner] if runner else [])
        with tempfile.NamedTemporaryFile("w", prefix="west-flash-", suffix=".log", delete=False) as fh:
            log = fh.name
        run_logged(cmd, ws.env, "west flash", cwd=ws.top, log=log)  # on failure the error names the log: kept
        os.unlink(log)

    return flash


def parse_flash_command(template: str) -> List[str]:
    """The ``--flash-command`` template as arguments; UsageError for an empty one or an
    unknown placeholder (said before any work)."""
    try:
        argv = shlex.split(template)
    except ValueError as exc:
        raise UsageError(f"--flash-command {template!r}: {exc}") from None
    if not argv:
        raise UsageError("--flash-command is empty")
    dummy = {k: f"<{k}>" for k in PLACEHOLDERS}
    for arg in argv:
        try:
            arg.format_map(dummy)
        except (KeyError, IndexError, ValueError) as exc:
            raise UsageError(f"--flash-command: {arg!r}: unknown or malformed placeholder ({exc}); placeholders: "
                             + ", ".join("{" + k + "}" for k in PLACEHOLDERS)) from None
    return argv


def command_flasher(template: str, timeout: float = 600.0) -> FlashFn:
    """A flash step running the user's command (``--flash-command``), its placeholders
    (:data:`PLACEHOLDERS`, e.g. ``{hex}``) filled in per candidate; no shell. A
    non-zero exit or a time-out is a TinyEngineError with the end of its output."""
    argv = parse_flash_command(template)

    def flash(image: FirmwareImage) -> None:
        cmd = [a.format_map(image.fields()) for a in argv]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TinyEngineError(f"flash command timed out after {timeout:g} s: {shlex.join(cmd)}") from None
        except OSError as exc:
            raise TinyEngineError(f"flash command cannot run: {shlex.join(cmd)}: {exc}") from None
        if proc.returncode != 0:
            out = (proc.stdout + proc.stderr).strip().splitlines()
            raise TinyEngineError(f"flash command failed with status {proc.returncode}: {shlex.join(cmd)}"
                                  + (f": {' | '.join(out[-3:])}" if out else ""))

    return flash
