"""Shared fixtures: the public models of ../shared and compiled-model caching."""

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


def pytest_report_header(config):
    d = shared_models_dir()
    return f"shared models: {d if d else 'ABSENT (model tests will be skipped)'}"
