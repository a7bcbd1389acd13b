"""The Runner interface behind ``tvmc run``: the host runner, the protocol runner
over a Python fake device, option checks. (QEMU runners: test_qemu.py,
test_serial_qemu.py.)"""
import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm import cli
from tinyengine_tvm.errors import TinyEngineError, UsageError
from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.runtime import HostModel, Runner, open_runner
from tinyengine_tvm.runtime.client import Link
from tinyengine_tvm.runtime.device import ProtocolRunner
from tinyengine_tvm.runtime.project import random_inputs
from tinyengine_tvm.runtime.protocol import DeviceGone
from tinyengine_tvm.testing.fake_device import FakeDevice


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("runner") / "out")
    te.compile(str(default_model_path())).export(out)
    return out


def test_host_runner_measures_repeat_times_number(project, tmp_path):
    with open_runner(project, "host", build_dir=str(tmp_path / "b")) as runner:
        assert isinstance(runner, Runner)
        x = random_inputs(runner.meta["inputs"], 4)
        outputs, report = runner.run(x, number=2, repeat=3)
        assert report["device"] == "host" and len(report["milliseconds"]) == 3
        assert runner.format_time(report).startswith("host execution time (ms, 3 runs): mean ")
    want = HostModel(project, str(tmp_path / "h")).run(x)
    for k, v in want.items():
        np.testing.assert_array_equal(outputs[k], v)


def test_protocol_runner_over_a_fake_device():
    meta = {"model": "fake", "memory": {"arena_bytes": 1024},
            "inputs": [{"name": "x", "shape": [8], "dtype": "int8", "scale": None, "zero_point": None}],
            "outputs": [{"name": "y", "shape": [8], "dtype": "int8", "scale": None, "zero_point": None}]}
    dev = FakeDevice(meta, lambda i: {"y": -i["x"]}, counter_hz=50_000_000, cycles_per_inference=5000)
    try:
        link = Link(dev.host_transport(), timeout=1.0)
        assert link.client.wait_boot(2.0) is not None
        with ProtocolRunner(link, meta) as runner:
            x = np.arange(8, dtype=np.int8)
            outputs, report = runner.run({"x": x}, number=3, repeat=2)
            np.testing.assert_array_equal(outputs["y"], -x)
            assert (report["number"], report["repeat"], report["cycles"]) == (3, 2, 5000)
            assert "fake (python, 50 MHz): 5,000 cycles per inference" in runner.format_time(report)
        with pytest.raises(DeviceGone):
            link.client.hello()  # closed with the runner
    finally:
        dev.close()


def test_options_are_refused_before_any_work(project):
    with pytest.raises(UsageError, match="unknown device"):
        open_runner(project, "board")
    with pytest.raises(UsageError, match="needs --port"):
        open_runner(project, "serial")
    with pytest.raises(UsageError, match="unknown QEMU link"):
        open_runner(project, "qemu", qemu_link="usb")
    with pytest.raises(TinyEngineError, match="must be at least 1"):
        with open_runner(project, "host") as runner:
            runner.run(random_inputs(runner.meta["inputs"], 0), number=0)


def test_run_parser_declares_every_option(capsys):
    parser = cli.build_parser()  # argparse itself refuses an option declared twice
    args = vars(parser.parse_args(["run", "p"]))
    for d in ("device", "board", "qemu_link", "firmware", "zephyr_workspace", "port", "baud", "timeout", "link_timeout", "number", "repeat",
              "inputs", "outputs", "report", "print_time", "print_top", "seed"):
        assert d in args
    args = parser.parse_args(["run", "p", "--device=serial", "--port", "/dev/null", "--number", "4"])
    assert args.func is cli._cmd_run and (args.device, args.number, args.firmware) == ("serial", 4, "baremetal")
    assert args.qemu_link is None  # tcp for the bare-metal firmware, pty for Zephyr
    assert cli.main(["run", "p", "--device=serial"]) == 2
    assert "needs --port" in capsys.readouterr().err
