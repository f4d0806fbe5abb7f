"""Shared bits of the examples: where figures go, and a command-line option for it."""

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
