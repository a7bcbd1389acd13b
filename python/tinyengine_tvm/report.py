"""Memory reports drawn from compile metadata."""
from __future__ import annotations

from typing import List, Optional

from .errors import TinyEngineError
from .naming import quote_name, shorten
from .output_paths import GENERATOR, FileTarget, check_output_file, not_ours, write_file


def base_name(name: str) -> str:
    """The model tensor a step's name derives from: ``x[patch 3 crop]`` -> ``x``."""
    while name.endswith("]") and "[" in name:
        name = name[:name.rindex("[")]
    return name


def operator_axis(meta: dict, operators: List[str]) -> List[float]:
    """Live bytes per model operator (``operators``: names in execution order): the
    most any step computing that operator (its patches, crops and pastes
    included) keeps live; a step of no operator of its own (a crop of a stage
    source) counts towards the next one that has."""
    index = {name: i for i, name in enumerate(operators)}
    live = [0.0] * len(operators)
    pending = 0.0
    for op in meta["ops"]:
        i = index.get(base_name(op["name"]))
        if i is None:
            pending = max(pending, op["live_bytes"])
            continue
        live[i] = max(live[i], op["live_bytes"], pending)
        pending = 0.0
    return live


def plot_memory_timeline(optimized: dict, baseline: dict, path: str, sram_bytes: Optional[int] = None) -> str:
    """Draw live bytes per model operator for two compilations (the unoptimized one's
    operators as the axis), marking each peak, the patch stages of ``optimized``
    and, given ``sram_bytes``, the board's SRAM; returns path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise TinyEngineError("--memory-plot needs matplotlib (pip install matplotlib)") from exc
    operators = [op["name"] for op in baseline["ops"]]
    index = {name: i for i, name in enumerate(operators)}
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for report in optimized.get("passes", []):
        for k, st in enumerate(report.get("stages", []) if report.get("name") == "PatchBasedInference" else []):
            lo, hi = index.get(base_name(st["first_op"])), index.get(base_name(st["last_op"]))
            if lo is not None and hi is not None:
                ax.axvspan(lo - 0.5, hi + 0.5, color="tab:green", alpha=0.12,
                           label="patch stage" if k == 0 else None)
                ax.annotate(f"{st['grid'][0]}x{st['grid'][1]}", (lo - 0.4, 0), fontsize=7,
                            textcoords="offset points", xytext=(0, 3))
    for meta, label, style in ((baseline, "no optimizations", "--"), (optimized, "optimized", "-")):
        live = operator_axis(meta, operators)
        ax.step(range(len(live)), live, style, where="mid",
                label=f"{label} (arena {meta['memory']['arena_bytes']:,} B)")
        if live:
            peak = max(range(len(live)), key=live.__getitem__)
            ax.plot([peak], [live[peak]], "o")
            ax.annotate(f"peak {int(live[peak]):,} B\nop #{peak} {baseline['ops'][peak]['type']}\n"
                        f"{_plain(shorten(quote_name(operators[peak])))}",
                        (peak, live[peak]), textcoords="offset points", xytext=(5, 5), fontsize=8)
    if sram_bytes:
        ax.axhline(sram_bytes, color="tab:red", linewidth=1, label=f"board SRAM ({sram_bytes:,} B)")
    ax.set_xlabel("model operator (execution order)")
    ax.set_ylabel("live bytes")
    ax.set_title(f"{optimized['model']}: live activation memory per operator")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    target = check_plot_path(path)
    write_file(target, lambda tmp: fig.savefig(tmp, dpi=120, format="png", metadata={"Software": GENERATOR}))
    plt.close(fig)
    return path


def _plain(text: str) -> str:
    """``text`` shown literally by matplotlib (a ``$`` would start mathtext)."""
    return text.replace("$", r"\$")


def check_plot_path(path: str, keep=()) -> FileTarget:
    """Check where a memory plot may be written: a new .png, or one of our plots."""
    return check_output_file(path, "memory plot", (".png",), _previous_plot_reason, keep)


def _previous_plot_reason(path: str) -> Optional[str]:
    """None when ``path`` is a PNG whose Software text chunk names this tool."""
    import struct

    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except OSError:
        return not_ours("memory plot")
    pos = 8
    while data[:8] == b"\x89PNG\r\n\x1a\n" and pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"tEXt" and data[pos + 8:pos + 8 + length] == b"Software\0" + GENERATOR.encode():
            return None
        if kind == b"IDAT":
            break  # text chunks written by matplotlib come before the image data
        pos += 12 + length
    return not_ours("memory plot")
