"""A TVM RPC tracker and N ``tinyengine_tvm.rpc_server`` servers on loopback, for the farm scripts."""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Iterator, Sequence


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_farm(servers: int, key: str, cache_root: str, log_path: str, server_args: Sequence[str] = (),
               register_timeout: float = 120.0) -> Iterator[str]:
    """Start a tracker and ``servers`` QEMU servers registered under ``key`` (each with its own
    cache under ``cache_root``; ``server_args`` added to each), wait until all registered, yield
    the tracker's ``HOST:PORT``; kill them all on exit."""
    from ..runtime.rpc import free_servers

    python_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=python_dir)
    port = free_port()
    log = open(log_path, "wb")
    procs = [subprocess.Popen([sys.executable, "-m", "tvm.exec.rpc_tracker", "--host", "127.0.0.1", "--port",
                               str(port), "--port-end", str(port + 1), "--silent"],
                              stdout=log, stderr=log, env=env, start_new_session=True)]
    try:
        tracker = f"127.0.0.1:{port}"
        for n in range(servers):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tinyengine_tvm.rpc_server", "--tracker", tracker, "--key", key,
                 "--device", "qemu", "--host", "127.0.0.1", "--name", f"s{n}",
                 "--cache-dir", os.path.join(cache_root, f"s{n}"), *server_args],
                stdout=log, stderr=log, env=env, start_new_session=True))
        deadline = time.monotonic() + register_timeout
        while True:
            try:
                if free_servers(("127.0.0.1", port), key) == servers:
                    break
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the {servers} server(s) did not register within {register_timeout:.0f} s "
                                 f"(log: {log_path})")
            time.sleep(0.3)
        yield tracker
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        log.close()
