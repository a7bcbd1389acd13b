"""Memory reports drawn from compile metadata."""
from __future__ import annotations

from .errors import TinyEngineError


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
            ax.annotate(f"peak {live[peak]:,} B\n{meta['ops'][peak]['type']}", (peak, live[peak]),
                        textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("operator (execution order)")
    ax.set_ylabel("live bytes")
    ax.set_title(f"{optimized['model']}: live activation memory per operator")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
