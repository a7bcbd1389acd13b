"""``tvmc tune --runner serial``: tuning on a board on a serial port, every candidate
built as the Zephyr application, flashed, then run over the benchmark protocol.

No board is attached here, so one is emulated: the Zephyr app for mps2/an500
(Cortex-M7) in QEMU, whose UART is a TCP server on a fixed loopback port. The
flash step given to :class:`SerialMeasurer` (re)starts QEMU on the new
zephyr.elf, and the measurer opens ``socket://127.0.0.1:PORT`` as it would
/dev/ttyACM0. What this cannot check: ``west flash`` with a real probe, and DWT
cycles (QEMU has no DWT: the firmware reports Zephyr timer ticks, and says so).

Needs the Zephyr workspace (``zephyr_workspace`` fixture), qemu-system-arm and
arm-none-eabi-gcc; skipped with the reason without them. Builds are cached by
content (micro/zephyr_build.py).
"""
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from tinyengine_tvm import cli
from tinyengine_tvm.errors import TinyEngineError, UsageError
from tinyengine_tvm.modelgen.default_model import default_model_path

MODEL = str(default_model_path())
MISSING = [t for t in ("qemu-system-arm", "arm-none-eabi-gcc") if shutil.which(t) is None]
needs_qemu = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not found: the emulated board "
                                                     "needs them")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class EmulatedBoard:
    """A stand-in for a board on a serial port: flashing it restarts QEMU on the new ELF,
    its UART a TCP server on the same loopback port every time (as a board keeps its
    /dev/ttyACM0). ``fail_on``: the flash calls (1-based) that fail, as a lost probe would."""

    def __init__(self, board: str = "mps2/an500", fail_on=()):
        from tinyengine_tvm.micro.zephyr_boards import get_zephyr_board

        self.zb = get_zephyr_board(board)
        self.tcp_port = _free_port()
        self.url = f"socket://127.0.0.1:{self.tcp_port}"
        self.fail_on = set(fail_on)
        self.calls = []       # every image it was asked to flash
        self.flashed = []     # the ELFs it actually runs, in order
        self.proc = None

    def flash(self, image) -> None:
        from tinyengine_tvm.micro.zephyr_qemu import qemu_zephyr_command

        self.calls.append(image)
        assert os.path.isfile(image.elf) and os.path.isfile(image.hex) and os.path.isfile(image.bin)
        assert image.board == self.zb.zephyr_name and os.path.isdir(image.build_dir)
        if len(self.calls) in self.fail_on:
            raise RuntimeError("probe not found (emulated failure)")  # the old firmware keeps running
        self.stop()
        cmd = qemu_zephyr_command(image.elf, self.zb)
        cmd[cmd.index("-serial") + 1] = f"tcp:127.0.0.1:{self.tcp_port},server=on,wait=off"
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:  # flashed = the board runs it: QEMU listens on the port
            if self.proc.poll() is not None:
                raise RuntimeError(f"QEMU exited: {self.proc.stderr.read().decode(errors='replace')[-300:]}")
            try:
                socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("QEMU does not listen on its serial port")
                time.sleep(0.05)
        self.flashed.append(image.elf)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc.stderr.close()
            self.proc = None


@pytest.fixture
def board():
    boards = []

    def make(**kw):
        b = EmulatedBoard(**kw)
        boards.append(b)
        return b

    yield make
    for b in boards:
        b.stop()


@needs_qemu
def test_tuning_on_a_board_flashed_per_candidate(zephyr_workspace, board, tmp_path):
    from tinyengine_tvm.micro.zephyr_qemu import UNIT
    from tinyengine_tvm.tune.measure import SerialMeasurer
    from tinyengine_tvm.tune.records import load_records
    from tinyengine_tvm.tune.tuner import format_result, tune

    b = board(fail_on={2})
    m = SerialMeasurer("mps2/an500", b.url, workspace=zephyr_workspace, flash=b.flash, open_timeout=10)
    assert m.name == "serial:mps2/an500" and m.unit is None
    records = str(tmp_path / "records.json")
    r = tune(MODEL, "mps2-an500", trials=3, pool_size=6, strategy="random", seed=1, measurer=m,
             records_path=records, progress=False, kernel_search=False)
    # Three candidates, each built and flashed in turn; the second flash failed.
    assert len(r.measured) == 3 and len(b.calls) == 3 and len(b.flashed) == 2
    assert len({img.elf for img in b.calls}) == 3  # a distinct firmware per candidate
    recs = load_records(records)
    assert [x["runner"] for x in recs] == ["serial:mps2/an500"] * 3
    ok = [x for x in recs if x["latency"] is not None]
    assert len(ok) == 2
    # The second candidate's own record holds its flash error; the run went on to the third.
    assert recs[1]["latency"] is None and recs[1]["error"] == "flash: probe not found (emulated failure)"
    assert recs[1]["unit"] == UNIT  # the unit this runner measures in, never a made-up "cycles"
    for x in ok:
        # QEMU has no DWT: the firmware itself reports timer ticks, passed through, never called cycles.
        assert x["unit"] == UNIT and x["error"] is None
        costs = [c for _, c in x["layers"]]
        assert costs and all(c >= 0 for c in costs) and sum(costs) == pytest.approx(x["latency"])
        assert x["latency"] > 0 and x["flash_bytes"] > 0
    assert r.unit == UNIT and r.runner == "serial:mps2/an500" and r.default.latency is not None
    assert r.best.latency == min(x["latency"] for x in ok)
    text = format_result(r)
    assert "on serial:mps2/an500" in text and UNIT in text


@needs_qemu
def test_a_board_left_on_an_earlier_firmware_is_refused(zephyr_workspace, board, tmp_path):
    """The flash step reports success but the board still runs the previous candidate
    (different arena): that candidate's measurement is an error, not the other's figures."""
    import tinyengine_tvm as te
    from tinyengine_tvm.tune.measure import SerialMeasurer

    a, c = str(tmp_path / "a"), str(tmp_path / "c")
    te.compile(MODEL).export(a)
    te.compile(MODEL, disabled_passes=["PatchBasedInference"]).export(c)
    arenas = [json.load(open(os.path.join(d, "metadata.json")))["memory"]["arena_bytes"] for d in (a, c)]
    assert arenas[0] != arenas[1]
    b = board()
    flashes = []

    def flash_once(image):
        flashes.append(image)
        if len(flashes) == 1:
            b.flash(image)  # later "flashes" do nothing: the board keeps the first firmware

    m = SerialMeasurer("mps2/an500", b.url, workspace=zephyr_workspace, flash=flash_once, open_timeout=10)
    first, second = m.measure_many([a, c])
    assert first.error is None and first.latency > 0 and first.unit == "zephyr_ticks"
    assert second.latency is None and second.error.startswith("run: ") and "not flashed" in second.error


def test_tvmc_tune_serial_options_are_checked_before_any_work(tmp_path, capsys, monkeypatch):
    out = tmp_path / "r.json"
    base = ["tune", MODEL, "--target-tinyengine-board", "NUCLEO-F746ZG", "-o", str(out), "--no-progress"]
    monkeypatch.delenv("ZEPHYR_BASE", raising=False)
    for extra, message in (
            (["--runner", "serial"], "--runner serial needs --port PORT"),
            (["--port", "/dev/ttyACM0"], "--port: for --runner serial"),
            (["--flash-command", "true"], "--flash-command: for --runner serial"),
            (["--runner", "serial", "--port", "/dev/ttyACM0", "--flash-command", "flash {elf} {nope}"],
             "unknown or malformed placeholder"),
            (["--runner", "serial", "--port", "/dev/ttyACM0", "--flash-command", ""], "--flash-command is empty"),
            (["--runner", "serial", "--port", "/dev/ttyACM0"], "ZEPHYR_BASE is not set"),
            (["--runner", "serial", "--port", "/dev/ttyACM0", "--zephyr-workspace", str(tmp_path / "nows")],
             "no such directory")):
        assert cli.main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert message in err, (extra, err)
        assert not out.exists() and os.listdir(tmp_path) == [], extra


def test_tvmc_tune_serial_refuses_west_flash_on_an_emulated_board(zephyr_workspace, tmp_path, capsys):
    out = tmp_path / "r.json"
    assert cli.main(["tune", MODEL, "--target-tinyengine-board", "mps2-an500", "-o", str(out), "--runner", "serial",
                     "--port", "socket://127.0.0.1:9", "--zephyr-workspace", zephyr_workspace]) == 2
    assert "is emulated: there is no board to west flash" in capsys.readouterr().err and not out.exists()


def test_flash_command_fills_its_placeholders_without_a_shell(tmp_path):
    from tinyengine_tvm.micro.zephyr_flash import FirmwareImage, command_flasher, parse_flash_command

    log = tmp_path / "log"
    img = FirmwareImage("/b/z.elf", "/b/z.hex", "/b/z.bin", "/b/build dir", "nucleo_f746zg")
    script = tmp_path / "probe.sh"
    script.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$0.log"\n')
    script.chmod(0o755)
    command_flasher(f"{script} --hex={{hex}} {{elf}} '{{build_dir}}' {{bin}} {{board}} ;")(img)
    assert open(f"{script}.log").read().splitlines() == ["--hex=/b/z.hex", "/b/z.elf", "/b/build dir", "/b/z.bin",
                                                        "nucleo_f746zg", ";"]
    with pytest.raises(TinyEngineError, match=r"flash command failed with status 3: .*: no probe"):
        command_flasher("sh -c 'echo no probe >&2; exit 3'")(img)
    with pytest.raises(TinyEngineError, match="cannot run"):
        command_flasher(str(tmp_path / "missing-tool") + " {hex}")(img)
    with pytest.raises(UsageError, match="placeholders: {elf}, {hex}, {bin}, {build_dir}, {board}"):
        parse_flash_command("x {hexx}")
    assert not log.exists()


def test_west_flasher_needs_a_west_workspace(tmp_path):
    from tinyengine_tvm.micro.zephyr_flash import west_flasher
    from tinyengine_tvm.micro.zephyr_workspace import ZephyrWorkspace

    ws = ZephyrWorkspace(str(tmp_path), str(tmp_path / "zephyr"), {}, None, ["no .west/"])
    with pytest.raises(UsageError, match="west workspace.*no .west/.*--flash-command"):
        west_flasher(ws)


@pytest.mark.parametrize("runner_unit", [None, "instructions"])
def test_earlier_layer_costs_count_only_in_the_unit_measured(runner_unit, tmp_path, monkeypatch):
    """A board's runner knows its unit only once it has measured (cycles, or timer ticks):
    earlier records in QEMU's instructions must not be mixed with its figures, and its
    own unit's records are reused; a QEMU runner keeps reusing instruction records."""
    from tinyengine_tvm.runtime.project import read_metadata
    from tinyengine_tvm.tune import tuner
    from tinyengine_tvm.tune.measure import Measurement
    from tinyengine_tvm.tune.records import append_records, make_record
    from tinyengine_tvm.tune.space import TuningConfig

    measured_unit = "cycles" if runner_unit is None else "instructions"

    class Runner:
        """Every step costs 5 in ``measured_unit`` (what the tuner does with the figures is the point)."""
        name = "serial:fake"

        def measure_many(self, dirs):
            out = []
            for d in dirs:
                n = len(read_metadata(d)["ops"])
                out.append(Measurement(5.0 * n, measured_unit, [5.0] * n, 1000))
            return out

    runner = Runner()
    runner.unit = runner_unit  # None: known once measured, as SerialMeasurer says
    default_sigs = [sig for sig, _ in tuner.compile_candidates(MODEL, [TuningConfig()], "cortex-m7")[0].layers]

    def rec(unit, layers):
        return make_record(model="other", sha256="00", board="mps2-an500", core="cortex-m7", sram_budget=1,
                           flash_budget=1, runner="x", config=TuningConfig(), latency=1.0, unit=unit,
                           arena_bytes=1, flash_bytes=1, fits=True, layers=layers)

    prior = str(tmp_path / "prior.json")
    append_records(prior, [rec("instructions", [("sig-in-instructions", 1e12)]),
                           rec("cycles", [("sig-in-cycles", 3.0)] + [(s, 999.0) for s in default_sigs])])
    seen = []
    real_rank = tuner._rank
    monkeypatch.setattr(tuner, "_rank", lambda queue, model, known=None: (seen.append(dict(known)),
                                                                         real_rank(queue, model, known))[1])
    r = tuner.tune(MODEL, "mps2-an500", trials=2, pool_size=4, measurer=runner, prior_records=[prior],
                   progress=False, kernel_search=False)
    assert r.unit == measured_unit and seen
    known = seen[0]
    if runner_unit is None:
        assert "sig-in-instructions" not in known and known["sig-in-cycles"] == 3.0
        assert all(known[s] == 5.0 for s in default_sigs)  # this run's measurement wins over the records'
    else:
        assert known["sig-in-instructions"] == 1e12 and "sig-in-cycles" not in known


@needs_qemu
def test_tvmc_tune_runner_serial_with_a_flash_command(zephyr_workspace, tmp_path, capsys):
    """The command line end to end: --flash-command (here a script that restarts QEMU on {elf})
    and --port as a socket:// URL."""
    import signal
    import sys

    tcp_port = _free_port()
    pidfile = tmp_path / "qemu.pid"
    script = os.path.join(os.path.dirname(__file__), "emulated_board_flash.py")
    out = tmp_path / "records.json"
    try:
        assert cli.main(["tune", MODEL, "--target-tinyengine-board", "mps2-an500", "-o", str(out), "--runner",
                         "serial", "--port", f"socket://127.0.0.1:{tcp_port}", "--zephyr-workspace",
                         zephyr_workspace, "--flash-command", f"{sys.executable} {script} {{elf}} {tcp_port} {pidfile}",
                         "--trials", "2", "--pool", "4", "--strategy", "random", "--seed", "1",
                         "--no-kernel-search", "--no-progress"]) == 0
    finally:
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
    text = capsys.readouterr().out
    assert "on serial:mps2/an500" in text and "zephyr_ticks" in text
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(recs) == 2 and all(r["runner"] == "serial:mps2/an500" and r["unit"] == "zephyr_ticks"
                                  and r["latency"] > 0 and r["error"] is None for r in recs)


def test_west_flasher_gives_west_the_candidates_images(tmp_path):
    """The default flash step's command line, run by a stand-in for west (a real `west flash`
    needs a probe): the board's build directory, no rebuild, the candidate's own files."""
    import sys

    from tinyengine_tvm.micro.zephyr_flash import FirmwareImage, west_flasher
    from tinyengine_tvm.micro.zephyr_workspace import ZephyrWorkspace

    fake = tmp_path / "west.py"
    fake.write_text("import sys\nopen(sys.argv[0] + '.args', 'w').write('\\n'.join(sys.argv[1:]))\n"
                    "sys.exit(7 if 'fail' in sys.argv[-1] else 0)\n")
    build = tmp_path / "build"
    img = FirmwareImage("/c/k.elf", "/c/k.hex", "/c/k.bin", str(build), "nucleo_f746zg")
    ws = ZephyrWorkspace(str(tmp_path), str(tmp_path / "zephyr"), dict(os.environ), [sys.executable, str(fake)])
    with pytest.raises(TinyEngineError, match="no zephyr/runners.yaml"):
        west_flasher(ws)(img)  # not a configured build directory: said, west not run
    (build / "zephyr").mkdir(parents=True)
    (build / "zephyr" / "runners.yaml").write_text("runners: [openocd]\n")
    west_flasher(ws, "openocd")(img)
    assert open(f"{fake}.args").read().split("\n") == [
        "flash", "-d", str(build), "--no-rebuild", "--elf-file", "/c/k.elf", "--hex-file", "/c/k.hex",
        "--bin-file", "/c/k.bin", "--runner", "openocd"]
    with pytest.raises(TinyEngineError, match=r"west flash failed with status 7 \(log: (\S+)\)") as e:
        west_flasher(ws, "fail")(img)
    log = str(e.value).split("(log: ")[1].split(")")[0]
    assert os.path.isfile(log)  # the error names it: it is kept
    os.unlink(log)
