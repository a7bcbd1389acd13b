"""The device farm over TVM's RPC tracker (runtime/rpc.py, rpc_server.py): a real
tracker (``python -m tvm.exec.rpc_tracker``) and two QEMU servers
(``python -m tinyengine_tvm.rpc_server``) as subprocesses on loopback; ``tvmc run
--rpc-tracker``, RpcPool batches over both servers, and a server SIGKILLed in the
middle of a batch.

The QEMU tests need arm-none-eabi-gcc and qemu-system-arm (scripts/install_arm_toolchain.sh)
and the tracker needs tornado; skipped with the reason without them."""
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm import cli
from tinyengine_tvm.errors import UsageError
from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.runtime import firmware
from tinyengine_tvm.runtime.host import HostRunner
from tinyengine_tvm.runtime.project import random_inputs
from tinyengine_tvm.runtime.rpc import MeasureJob, RpcPool, free_servers, parse_tracker

PYTHONPATH = os.path.dirname(os.path.dirname(os.path.abspath(te.__file__)))


def _missing():
    missing = list(firmware.missing_tools())
    try:
        import tornado  # noqa: F401  (TVM's tracker runs on it)
    except ImportError:
        missing.append("tornado (pip install tornado)")
    return missing


MISSING = _missing()
needs_farm = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not found: the RPC farm tests run "
                                                      "QEMU servers (scripts/install_arm_toolchain.sh)")


# --------------------------------------------------------------------------- options, no farm needed
@pytest.mark.parametrize("value", ["127.0.0.1", "127.0.0.1:", ":9190", "host:0", "host:65536", "host:x",
                                   "a b:9190", "http://h:9190"])
def test_bad_rpc_tracker_exits_2_before_any_work(value, tmp_path, capsys):
    """A bad HOST:PORT is refused before the project is opened: the project here does not exist."""
    rc = cli.main(["run", str(tmp_path / "missing.tar"), "--rpc-tracker", value, "--rpc-key", "k",
                   "--outputs", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: --rpc-tracker") and "missing.tar" not in err[0]
    assert not os.path.exists(tmp_path / "o.npz")


def test_rpc_options_go_together_and_leave_the_device_to_the_server(tmp_path, capsys):
    base = ["run", str(tmp_path / "missing.tar")]
    assert cli.main(base + ["--rpc-tracker", "127.0.0.1:9190"]) == 2
    assert "--rpc-key" in capsys.readouterr().err
    assert cli.main(base + ["--rpc-key", "k"]) == 2
    assert "--rpc-tracker" in capsys.readouterr().err
    assert cli.main(base + ["--rpc-tracker", "127.0.0.1:9190", "--rpc-key", "k", "--device", "qemu"]) == 2
    assert "the device is the server's" in capsys.readouterr().err
    assert parse_tracker("[::1]:9190") == ("::1", 9190)
    with pytest.raises(UsageError):
        parse_tracker("farm:9190:1")


@pytest.mark.parametrize("argv, message", [
    (["--tracker", "nohost", "--key", "k", "--device", "qemu"], "--tracker 'nohost'"),
    (["--tracker", "127.0.0.1:9190", "--key", "a b", "--device", "qemu"], "--key 'a b'"),
    (["--tracker", "127.0.0.1:9190", "--key", "k", "--device", "serial"], "needs --port"),
    (["--tracker", "127.0.0.1:9190", "--key", "k", "--device", "serial", "--port", "/dev/null",
      "--firmware", "zephyr"], "needs --device=qemu"),
])
def test_rpc_server_checks_its_options_before_registering(argv, message, capsys):
    from tinyengine_tvm import rpc_server

    assert rpc_server.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_rpc_server_says_when_the_tracker_is_not_there(capsys):
    from tinyengine_tvm import rpc_server

    port = _free_port()
    assert rpc_server.main(["--tracker", f"127.0.0.1:{port}", "--tracker-wait", "0.5", "--key", "k",
                            "--device", "serial", "--port", "/dev/null"]) == 1
    assert f"cannot reach the RPC tracker at 127.0.0.1:{port}" in capsys.readouterr().err


# --------------------------------------------------------------------------- the farm
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(args, log):
    env = dict(os.environ, PYTHONPATH=PYTHONPATH + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # Its own process group: the finalizer kills TVM's worker processes with it.
    return subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _qemus_under(path: str):
    """Pids of running qemu-system-arm processes whose command line mentions ``path``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-system-arm" in cmd and path in cmd:
            found.append(int(pid))
    return found


class Farm:
    def __init__(self, tmp):
        self.tmp = tmp
        self.key = f"te-test-{os.getpid()}"
        self.procs = []
        self.servers = {}  # name -> (Popen, cache dir)
        port = _free_port()
        self.tracker = f"127.0.0.1:{port}"
        self.log = open(os.path.join(tmp, "farm.log"), "wb")
        try:
            self.procs.append(_spawn(["-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port", str(port),
                                      "--port-end", str(port + 1), "--silent"], self.log))
            for name in ("srv-A", "srv-B"):
                self.start_server(name)
            deadline = time.monotonic() + 60
            while self._free() < 2:
                assert time.monotonic() < deadline, open(os.path.join(tmp, "farm.log")).read()[-2000:]
                time.sleep(0.3)
        except BaseException:  # the fixture's finalizer never runs for a farm that did not start
            self.close()
            raise

    def start_server(self, name):
        cache = os.path.join(self.tmp, name)
        proc = _spawn(["-m", "tinyengine_tvm.rpc_server", "--tracker", self.tracker, "--key", self.key,
                       "--device", "qemu", "--board", "mps2-an500", "--host", "127.0.0.1", "--name", name,
                       "--cache-dir", cache], self.log)
        self.procs.append(proc)
        self.servers[name] = (proc, cache)

    def _free(self):
        try:
            return free_servers(parse_tracker(self.tracker), self.key)
        except Exception:  # the tracker is still starting
            return 0

    def close(self):
        for proc in reversed(self.procs):
            _kill_group(proc)
        self.log.close()


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    if MISSING:
        pytest.skip(f"{', '.join(MISSING)} not found: the RPC farm tests run QEMU servers")
    f = Farm(str(tmp_path_factory.mktemp("farm")))
    yield f
    f.close()
    # Nothing a server started may outlive it.
    deadline = time.monotonic() + 5
    while _qemus_under(f.tmp) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _qemus_under(f.tmp)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("rpc-project") / "default")
    compiled = te.compile(str(default_model_path()))
    compiled.export(out)
    return out, compiled.metadata


@pytest.fixture(scope="module")
def host(project, tmp_path_factory):
    with HostRunner(project[0], str(tmp_path_factory.mktemp("rpc-host-build"))) as runner:
        yield lambda inputs: runner.run(inputs)[0]


def _inputs(meta, seed):
    return random_inputs(meta["inputs"], seed)


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_servers_sharing_a_cache_folder_unpack_a_project_once(project, tmp_path):
    """Servers on one machine may share --cache-dir: racing to unpack the same upload, each gets the
    one unpacked folder (no error for the ones that lost), and no temporary folder is left."""
    from tinyengine_tvm.runtime.rpc import _cached_project, project_tar_bytes

    tar = project_tar_bytes(project[0])
    cache = str(tmp_path / "shared")
    start = threading.Barrier(6)
    got, errors = [], []

    def server():
        start.wait()
        try:
            got.append(_cached_project(cache, tar))
        except Exception as exc:  # noqa: BLE001 - the test reports whatever a loser raised
            errors.append(exc)

    threads = [threading.Thread(target=server) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(got)) == 1 and len(got) == 6
    assert os.listdir(os.path.join(cache, "projects")) == [os.path.basename(got[0])]
    assert os.path.isfile(os.path.join(got[0], "metadata.json"))


def test_pool_raises_when_the_tracker_is_unreachable(project):
    """No tracker is a mistake of the whole batch, said at once; a bad job alone still fails alone."""
    from tinyengine_tvm.errors import TinyEngineError

    path, meta = project
    pool = RpcPool(f"127.0.0.1:{_free_port()}", "k", request_timeout=5)
    with pytest.raises(TinyEngineError, match="cannot reach the RPC tracker"):
        pool.measure_many([MeasureJob(path, _inputs(meta, 0))])
    [only] = pool.measure_many([MeasureJob(path, _inputs(meta, 0), number=0)])
    assert not only.ok and "at least 1" in only.error


@needs_farm
def test_tvmc_run_over_rpc_gives_the_host_outputs(farm, project, tmp_path, capsys):
    path = project[0]
    rpc_out, host_out, report = tmp_path / "rpc.npz", tmp_path / "host.npz", tmp_path / "r.json"
    assert cli.main(["run", path, "--rpc-tracker", farm.tracker, "--rpc-key", farm.key, "--seed", "3",
                     "--outputs", str(rpc_out), "--report", str(report), "--print-time"]) == 0
    assert "instructions per inference" in capsys.readouterr().out
    assert cli.main(["run", path, "--device=host", "--seed", "3", "--outputs", str(host_out)]) == 0
    with np.load(rpc_out) as a, np.load(host_out) as b:
        assert _same(dict(a), dict(b))
    import json

    r = json.load(open(report))
    assert r["rpc"]["server"] in farm.servers and r["rpc"]["key"] == farm.key and r["instructions_per_repeat"]


@needs_farm
def test_tvmc_run_profile_over_rpc_states_the_overhead(farm, project, tmp_path, capsys):
    """--profile asks the server for a profile build, and a plain run on a server of the same key."""
    import json

    out = tmp_path / "prof.json"
    assert cli.main(["run", project[0], "--rpc-tracker", farm.tracker, "--rpc-key", farm.key,
                     "--profile-json", str(out), "--profile-top", "3"]) == 0
    assert "profiling overhead" in capsys.readouterr().out
    prof = json.load(open(out))
    assert prof["unit"] == "instructions" and len(prof["steps"]) == len(project[1]["ops"])
    assert 0 < prof["overhead"] < 0.01 * prof["plain_total"]


@needs_farm
def test_pool_batch_runs_on_both_servers_in_job_order(farm, project, host, tmp_path):
    """Six jobs on two servers, results in job order and equal to the host's; a job with
    unusable inputs fails without a server, one whose C does not build fails twice, with the reason."""
    path, meta = project
    broken = str(tmp_path / "broken")
    import shutil

    shutil.copytree(path, broken)
    model_c = next(f for f in meta["files"] if f.startswith("src/") and f.endswith(".c") and "kernels" not in f)
    with open(os.path.join(broken, model_c), "a") as f:
        f.write("\n#error this project does not build\n")
    jobs = [MeasureJob(path, _inputs(meta, seed)) for seed in range(6)]
    jobs.insert(2, MeasureJob(path, np.zeros((1, 2), np.int8)))  # wrong shape: refused before any server
    jobs.insert(4, MeasureJob(broken, _inputs(meta, 0)))
    results = RpcPool(farm.tracker, farm.key, request_timeout=60).measure_many(jobs)
    assert len(results) == len(jobs)
    bad_inputs, bad_build = results.pop(2), results.pop(3)
    assert not bad_inputs.ok and "expected shape" in bad_inputs.error and bad_inputs.attempts == []
    assert not bad_build.ok and len(bad_build.attempts) == 2 and bad_build.error.startswith("failed 2 times")
    for attempt in bad_build.attempts:  # each names its server and gives the compiler's diagnostic
        assert attempt.split(":")[0] in farm.servers and "error: #error this project does not build" in attempt
    for seed, r in enumerate(results):
        assert r.ok, r.error
        assert _same(r.outputs, host(_inputs(meta, seed))), f"job of seed {seed}"
        assert r.report["rpc"]["server"] == r.server and len(r.attempts) == 1
        phases = r.report["rpc"]["phases"]
        assert [p["phase"] for p in phases] == ["unpack", "build", "boot", "run", "close"]
        assert all(p["wall_s"] >= 0 and p["cpu_s"] >= 0 and p["child_cpu_s"] >= 0 for p in phases)
        assert r.report["rpc"]["call_wall_s"] >= sum(p["wall_s"] for p in phases) > 0
    assert {r.server for r in results} == set(farm.servers)


@needs_farm
def test_tvmc_tune_measures_on_the_farm(farm, tmp_path, capsys):
    """tvmc tune --runner rpc: the batch runs on the farm's servers, the records name the farm, and the
    instruction counts are those of a local QEMU measurement of the same plan (QEMU -icount is exact)."""
    from tinyengine_tvm.tune.measure import QemuMeasurer
    from tinyengine_tvm.tune.records import load_records
    from tinyengine_tvm.tune.space import TuningConfig

    records = tmp_path / "records.json"
    model = str(default_model_path())
    assert cli.main(["tune", model, "--target-tinyengine-board", "NUCLEO-F746ZG", "--runner", "rpc",
                     "--rpc-tracker", farm.tracker, "--rpc-key", farm.key, "--trials", "3", "--pool", "6",
                     "--strategy", "random", "--no-progress", "-o", str(records)]) == 0
    assert f"on rpc:{farm.key}" in capsys.readouterr().out
    recs = load_records(str(records))
    assert len(recs) == 3 and all(r["runner"] == f"rpc:{farm.key}" and r["latency"] > 0 for r in recs)
    default = te.compile(model, core="cortex-m7", **TuningConfig.from_json(recs[0]["config"]).compile_kwargs())
    default.export(str(tmp_path / "default"))
    local = QemuMeasurer("mps2-an500", str(tmp_path / "local")).measure(str(tmp_path / "default"))
    # Each step's count is rounded to whole instructions on its own: the totals agree to a step each.
    assert abs(local.latency - recs[0]["latency"]) <= len(local.step_costs), (local.latency, recs[0]["latency"])


@needs_farm
def test_tracker_questions_are_answered_without_a_nagle_stall(farm):
    """TVM's tracker messages are a length and a body in two writes: with Nagle's algorithm and a
    delayed ACK each question waited ~40 ms per direction. Now a summary and a grant take milliseconds."""
    from tinyengine_tvm.runtime.rpc import _tracker_socket, count_servers, request_session

    tracker = parse_tracker(farm.tracker)
    sock = _tracker_socket(tracker)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()
    summaries, grants = [], []
    for _ in range(5):
        t = time.perf_counter()
        count_servers(tracker, farm.key)
        summaries.append(time.perf_counter() - t)
        t = time.perf_counter()
        session = request_session(tracker, farm.key, timeout=30)
        grants.append(time.perf_counter() - t)
        del session
        deadline = time.monotonic() + 10
        while free_servers(tracker, farm.key) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the server registers again once the session is over
    assert sorted(summaries)[2] < 0.04 and sorted(grants)[2] < 0.04, (summaries, grants)
    # A server registers again after each session (TVM's loop, in our server's worker): with both
    # servers held, a released one is granted again as soon as it has; that stalled ~0.1 s too.
    held = [request_session(tracker, farm.key, timeout=30) for _ in range(2)]
    regrants = []
    for _ in range(5):
        held[0] = None
        t = time.perf_counter()
        held[0] = request_session(tracker, farm.key, timeout=30)
        regrants.append(time.perf_counter() - t)
    held.clear()
    assert sorted(regrants)[2] < 0.065, regrants
    deadline = time.monotonic() + 10
    while free_servers(tracker, farm.key) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)


@needs_farm
def test_a_server_killed_mid_batch_costs_its_job_one_retry(farm, project, host):
    """SIGKILL one server's process while it measures: the batch completes on the other server,
    the job it was running is retried once there, and its emulator does not outlive it."""
    path, meta = project
    victim = "srv-A"
    proc, cache = farm.servers[victim]
    killed = threading.Event()

    def progress(index, result):
        if result.server == victim and not killed.is_set():
            killed.set()
            # Shortly after it took its next job: the kill lands inside that job's measurement.
            threading.Timer(0.15, os.kill, (proc.pid, signal.SIGKILL)).start()

    # 60 inferences (~0.5 s under QEMU): the kill 0.15 s into a job lands inside it, whatever the
    # build and boot cost (inputs no longer take the slow emulated UART).
    jobs = [MeasureJob(path, _inputs(meta, seed), number=60) for seed in range(8)]
    results = RpcPool(farm.tracker, farm.key, request_timeout=60).measure_many(jobs, progress)
    assert killed.is_set() and proc.wait(timeout=10) == -signal.SIGKILL
    retried = [r for r in results if len(r.attempts) > 1]
    assert retried, [r.attempts for r in results]
    for seed, r in enumerate(results):
        assert r.ok, r.error
        assert _same(r.outputs, host(_inputs(meta, seed)))
        assert len(r.attempts) <= 2
    for r in retried:
        assert r.server == "srv-B" and r.attempts[1] == "srv-B: ok"
        assert r.attempts[0].startswith(f"{victim}: the connection to the server was lost")
    deadline = time.monotonic() + 5
    while _qemus_under(cache) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _qemus_under(cache), "a killed server's QEMU kept running"
