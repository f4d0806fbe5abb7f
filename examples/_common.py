"""Shared bits of the examples: where figures go (a command-line option) and how they are saved."""

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


def save_figure(fig, out: Path, script: str) -> Path:
    """Save ``fig`` as ``out/<script name>.png`` (90 dpi, tight layout), print and return its path."""
    path = out / (Path(script).stem + ".png")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    print(f"figure: {path}")
    return path
