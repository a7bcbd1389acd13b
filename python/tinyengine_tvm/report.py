"""Memory reports drawn from compile metadata."""
from __future__ import annotations

from typing import Optional

from .errors import TinyEngineError
from .naming import quote_name, shorten
from .output_paths import GENERATOR, FileTarget, check_output_file, not_ours, write_file


def plot_memory_timeline(optimized: dict, baseline: dict, path: str) -> str:
    """Draw live bytes per operator for two compilations, marking each peak; returns path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise TinyEngineError("--memory-plot needs matplotlib (pip install matplotlib)") from exc
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for meta, label, style in ((baseline, "no optimizations", "--"), (optimized, "optimized", "-")):
        live = [op["live_bytes"] for op in meta["ops"]]
        ax.step(range(len(live)), live, style, where="mid",
                label=f"{label} (arena {meta['memory']['arena_bytes']:,} B)")
        if live:
            peak = max(range(len(live)), key=live.__getitem__)
            ax.plot([peak], [live[peak]], "o")
            op = meta["ops"][peak]
            ax.annotate(f"peak {live[peak]:,} B\nop #{peak} {op['type']}\n{_plain(shorten(quote_name(op['name'])))}",
                        (peak, live[peak]),
                        textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("operator (execution order)")
    ax.set_ylabel("live bytes")
    ax.set_title(f"{optimized['model']}: live activation memory per operator")
    ax.legend()
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
