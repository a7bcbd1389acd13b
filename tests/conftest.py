"""Shared fixtures: the public models of ../shared, TFLM, and the Zephyr workspace of ../shared/zephyr."""

import os
import shutil
import subprocess

import pytest

from tinyengine_tvm.testing import shared_models_dir


@pytest.fixture(scope="session")
def shared_dir():
    """Path of ../shared/models; skips (with the reason) where it is absent."""
    d = shared_models_dir()
    if d is None:
        pytest.skip("../shared/models is absent (CI provides it next to the checkout); "
                    "set TINYENGINE_SHARED_MODELS to run these tests")
    return d


@pytest.fixture(scope="session")
def tflm():
    """The tflite-micro runtime; skips where it is not installed."""
    try:
        from tflite_micro import runtime
    except ImportError:
        pytest.skip("tflite-micro is not installed (pip install --pre tflite-micro)")
    return runtime


SHARED_ZEPHYR = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "zephyr"))


@pytest.fixture(scope="session")
def zephyr_workspace():
    """The Zephyr 4.3.0 workspace: $TINYENGINE_ZEPHYR_WORKSPACE, else the one ../shared/zephyr/setup.sh
    makes (idempotent). Skips, with the reason, where neither exists or arm-none-eabi-gcc is missing."""
    ws = os.environ.get("TINYENGINE_ZEPHYR_WORKSPACE")
    if ws:
        return ws
    setup = os.path.join(SHARED_ZEPHYR, "setup.sh")
    if not os.path.isfile(setup):
        pytest.skip(f"{setup} is absent (CI provides ../shared next to the checkout) and "
                    "TINYENGINE_ZEPHYR_WORKSPACE is not set: the Zephyr build tests need a workspace")
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not found: the Zephyr build tests need it")
    proc = subprocess.run(["bash", setup], capture_output=True, text=True)
    # ../shared is here, so a failing set-up is a broken machine, not a reason to skip.
    assert proc.returncode == 0, f"../shared/zephyr/setup.sh failed: {proc.stderr[-800:]}"
    return os.path.dirname(proc.stdout.strip().splitlines()[-1])


def pytest_report_header(config):
    d = shared_models_dir()
    return f"shared models: {d if d else 'ABSENT (model tests will be skipped)'}"
