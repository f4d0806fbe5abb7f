"""Shared bits of the examples: where figures go (a command-line option), image panels, saving."""

from __future__ import annotations

import argparse
from pathlib import Path


def output_dir(description: str) -> Path:
    """Parse ``--out DIR`` (default ``examples/output``) and return it, created."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "output",
                        help="folder for the figure (default: examples/output)")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    return out


def draw_image(ax, values, title: str = "", title_size: float = 8, title_loc: str = "center", **imshow) -> None:
    """``values`` (2-D) as an image panel on ``ax`` without axes, titled ``title`` (none when empty);
    ``imshow``: matplotlib's ``imshow`` keywords (``cmap``, ``vmin``, ``vmax``)."""
    ax.imshow(values, **imshow)
    if title:
        ax.set_title(title, fontsize=title_size, loc=title_loc)
    ax.set_axis_off()


def save_figure(fig, out: Path, script: str, title: str) -> Path:
    """Title ``fig`` and save it as ``out/<script name>.png`` (90 dpi, tight layout), print and return its path."""
    path = out / (Path(script).stem + ".png")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"figure: {path}")
    return path
