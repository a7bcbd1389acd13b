"""create-project's flash/RAM prediction against real Zephyr 4.3.0 builds, on every
board of ``tvmc boards`` that Zephyr supports, with default options and with
mlperf=true (the bundled default CNN; scripts/check_zephyr_fit.py sweeps more
models). The prediction must never be below the ELF's figure and at most 2 KiB
above it; each build's Zephyr share must match the board table.

Needs the Zephyr workspace of ../shared/zephyr (the ``zephyr_workspace``
fixture skips, with the reason, where it is absent). Builds are cached by
content, one build directory per board, so the mlperf build after the default
one recompiles only the app.
"""
import pytest

import tinyengine_tvm as te
from tinyengine_tvm.micro.zephyr_boards import ZEPHYR_BOARDS
from tinyengine_tvm.modelgen.default_model import default_model_path

#: Every Zephyr board the board table (``tvmc boards``) lists: the six STM32 boards and the three emulated ones.
BOARDS = [name for name, zb in ZEPHYR_BOARDS.items() if zb.info is not None]
OPTION_SETS = {"default": {}, "mlperf": {"mlperf": "true"}}


@pytest.fixture(scope="module")
def workspace(zephyr_workspace):
    from tinyengine_tvm.micro.zephyr_workspace import find_workspace

    return find_workspace(zephyr_workspace)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("fit") / "default")
    te.compile(str(default_model_path())).export(out)
    return out


def test_the_boards_are_every_zephyr_board_of_the_board_table():
    from tinyengine_tvm.micro.zephyr_boards import STM32_BOARDS
    from tinyengine_tvm.targets.boards import BOARDS as TABLE

    assert set(STM32_BOARDS) < set(BOARDS) and len(BOARDS) == 9
    assert {ZEPHYR_BOARDS[b].info.name for b in BOARDS} == {b.name for b in TABLE.values()}


@pytest.mark.parametrize("options", sorted(OPTION_SETS))
@pytest.mark.parametrize("board", BOARDS)
def test_prediction_holds_on_the_real_build(board, options, compiled, workspace):
    from tinyengine_tvm.micro.zephyr_fit import check_fit

    r = check_fit(compiled, board, OPTION_SETS[options], ws=workspace)
    print(r.line())
    assert r.refused is None, r.refused  # the default model fits every board
    assert r.ok, r.line()
    for kind in ("flash", "ram"):
        assert r.real[kind] <= r.predicted[kind] <= r.real[kind] + 2048
    assert not r.warnings, r.warnings  # none from the generated files, nor Kconfig's
