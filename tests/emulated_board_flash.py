"""A flash command for tests: "flashes" the emulated board, i.e. (re)starts QEMU on a
Zephyr ELF for mps2/an500 with its UART a TCP server on a fixed loopback port, and
returns once QEMU listens there (as a probe returns once the board runs the image).

    python tests/emulated_board_flash.py ELF TCP_PORT PIDFILE

The QEMU of the previous flash (its pid in PIDFILE) is stopped first; the caller
stops the last one (kill the pid in PIDFILE)."""
import os
import signal
import socket
import subprocess
import sys
import time


def main(elf: str, tcp_port: int, pidfile: str) -> int:
    from tinyengine_tvm.micro.zephyr_boards import get_zephyr_board
    from tinyengine_tvm.micro.zephyr_qemu import qemu_zephyr_command

    if os.path.isfile(pidfile):
        try:
            os.kill(int(open(pidfile).read()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
        # the old QEMU must have let go of the port before the new one binds it
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", tcp_port), timeout=0.1).close()
                time.sleep(0.05)
            except OSError:
                break
    cmd = qemu_zephyr_command(elf, get_zephyr_board("mps2/an500"))
    cmd[cmd.index("-serial") + 1] = f"tcp:127.0.0.1:{tcp_port},server=on,wait=off"
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # outlives this command, as a flashed board runs on
    with open(pidfile, "w") as f:
        f.write(str(proc.pid))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"QEMU exited with status {proc.returncode}", file=sys.stderr)
            return 1
        try:
            socket.create_connection(("127.0.0.1", tcp_port), timeout=0.2).close()
            return 0
        except OSError:
            time.sleep(0.05)
    print("QEMU does not listen on its serial port", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
