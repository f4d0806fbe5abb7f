"""NMF side by side: ours (HALS, pipeline defaults) vs scikit-learn solver='cd' (the seed's settings).

    nice .venv/bin/python benchmarks/bench_nmf_peers.py [--demo results/seed/train.nc]
        [--eobs results/iberia/train.nc] [--figure nmf_error_vs_time.png] [--no-synthetic]

Matrices (each fitted by both, interleaved in one process, one BLAS thread and one thread for our in-memory passes):

* ``common``: :func:`_common.rain_matrix` 12,700 x 2,200 float64 (gamma patterns + sparse noise);
* ``lognormal``: :func:`_common.lognormal_rain_matrix` 12,700 x 2,200 float64, rank 25 smooth
  patterns x lognormal noise, 40 % exact zeros;
* ``--suite``: matrices of other character than those two, each at ``--cells`` x ``--windows`` (SUITE:
  zero fraction 0-80 %, multiplicative lognormal or gamma noise or additive noise, rank 10-30, and a
  wide shape with more windows than cells), instead of ``common`` and ``lognormal``; ``--only NAME`` picks
  one of them (e.g. ``--only lognormal-r30`` at the default 12,700 x 2,200: the matrix of issue 27);
* ``demo``: the workflow's ``train.nc`` (``--demo``; e.g. the demo at ``domain.resolution: null``);
* ``eobs``: the workflow's ``train.nc`` of the real E-OBS data (``--eobs``).

A ``train.nc`` with missing entries is made complete first (scikit-learn cannot fit around
NaN): windows with more than 10 % of their cells missing are left out, then cells with any
missing entry. Rank: ``--rank`` (25) for the synthetic matrices and the demo (``--demo-rank``),
the E-OBS experiment's ``n_modes`` (``--eobs-rank``, 10, as ``tests/configs/eobs*.yaml``).

scikit-learn: ``NMF(n_components, init='nndsvd', solver='cd', tol=1e-4, max_iter=5000,
random_state=0)`` (the seed's settings; random_state fixes the randomized SVD of its NNDSVD
init). Ours: ``precipmodes.NMF(n_components)`` with its defaults (init nndsvd, tol 1e-4,
max_iter 5000). Our compiled HALS kernel (numba) is loaded once before the first timing, as
scikit-learn's is imported (about 0.7 s per process, paid once by each nmf rule). Times include the
initialisation on both sides: CPU seconds
(``time.process_time``, one BLAS thread, so CPU ~ work) and wall seconds (noisy on a shared
machine). The figure: our relative error against wall time for the ``common`` and ``lognormal``
matrices and the demo's (when given), scikit-learn's final (time, error) as a marker (it keeps no
history).

Measured for issue 27 (one thread, 2-core machine shared with other work, load average 0.6-7.6 over the runs;
CPU seconds): whether the defaults end within +0.01 % of scikit-learn's final error in at most 1/3 of its CPU time.

================  ==============  ===========================  =========================  ========
matrix            size            scikit-learn (it, CPU, err)  ours (it, CPU, vs sklearn)  goal
================  ==============  ===========================  =========================  ========
common            4,000 x 1,000   652 it, 15.8 s, 0.047284     117 it, 2.38 s, -0.2448 %  met
lognormal (r25)   4,000 x 1,000   645 it, 15.0 s, 0.683050     71 it, 1.29 s, +0.0225 %   missed
lognormal-r30     12,700 x 2,200  452 it, 80.6 s, 0.700490     83 it, 12.0 s, -0.0026 %   met
lognormal-r30     4,000 x 1,000   232 it, 6.20 s, 0.667195     57 it, 1.24 s, +0.0171 %   missed
dry-r30           4,000 x 1,000   161 it, 4.40 s, 0.772112     59 it, 1.24 s, -0.0084 %   met
wet-r10           4,000 x 1,000   316 it, 5.00 s, 0.662364     45 it, 0.66 s, +0.0019 %   met
gamma-r30         4,000 x 1,000   501 it, 13.3 s, 0.676974     77 it, 1.58 s, +0.0004 %   met
additive-r20      4,000 x 1,000   3,619 it, 77.8 s, 0.335934   73 it, 1.48 s, +0.0308 %   missed
wide-r30          1,000 x 8,000   2,476 it, 132 s, 0.706729    73 it, 12.4 s, +0.0195 %   missed
================  ==============  ===========================  =========================  ========

No stopping rule fixes the misses without breaking a met case (our error histories to 300-1,300 iterations with
tol ~ 0, every rule replayed on them): lognormal-r30 at 4,000 x 1,000 sits on a plateau and reaches +0.01 % only
after 262 iterations, where 1/3 of scikit-learn's time allows 96 - no stopping rule can meet it; additive-r20
creeps (about 2e-7 of the error per iteration) and reaches +0.01 % after 442 iterations (allowed: ~1,480), but no
window rule stops there (20 iterations at tol 1e-5: 202 iterations, +0.015 %); wide-r30 is met by 20 iterations at
tol 1e-5 (145 iterations, +0.0097 %) or 40 at 3e-5 (141, +0.0099 %), but either stops dry-r30 after 72 or 87
iterations where 70 are allowed. A geometric-tail extrapolation of the window's decrease stopped earlier, not later.
The ``lognormal`` matrix, met at 12,700 x 2,200 (README), misses at 4,000 x 1,000: +0.01 % after 179
iterations (allowed: 267), but the window rules stop by 116 (40 iterations at 3e-5: +0.0184 %). The defaults
(20-iteration window, tol 1e-4) are kept; these four matrices are where the goal does not hold.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import dask
import numpy as np
import xarray as xr
from sklearn.decomposition import NMF as SkNMF
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import as_dataarray, lognormal_rain_matrix, matrix_parser, rain_matrix  # noqa: E402

from precipmodes.decomposition.nmf import NMF  # noqa: E402
from precipmodes.linalg.hals import hals_sweeps  # noqa: E402

# --suite: name -> (rank, zero fraction, noise, shape) with shape "tall" (--cells x --windows) or "wide"
# (--windows x 2 --cells: more windows than cells)
SUITE = {
    "lognormal-r30": (30, 0.4, "lognormal", "tall"),
    "dry-r30": (30, 0.8, "lognormal", "tall"),
    "wet-r10": (10, 0.0, "lognormal", "tall"),
    "gamma-r30": (30, 0.4, "gamma", "tall"),
    "additive-r20": (20, 0.4, "additive", "tall"),
    "wide-r30": (30, 0.4, "lognormal", "wide"),
}


def suite_matrix(name: str, n_cells: int, n_windows: int) -> tuple[xr.DataArray, int]:
    """The ``--suite`` matrix ``name`` (see SUITE) and its rank."""
    rank, zeros, noise, shape = SUITE[name]
    cells, windows = (n_cells, n_windows) if shape == "tall" else (n_windows, 2 * n_cells)
    return as_dataarray(lognormal_rain_matrix(cells, windows, rank, zeros, seed=2, noise=noise)), rank


def complete_matrix(path: str) -> xr.DataArray:
    """The ``precip (cell, time)`` matrix of a ``train.nc`` without missing entries (module docstring)."""
    X = xr.open_dataset(path)["precip"].load().transpose("cell", "time")
    missing = np.isnan(X.values)
    X = X.isel(time=~(missing.mean(axis=0) > 0.1))
    X = X.isel(cell=~np.isnan(X.values).any(axis=1))
    return X


def warm_up_kernel() -> None:
    """Load the compiled HALS sweeps (numba, from its on-disk cache) outside the timings."""
    for dtype in (np.float32, np.float64):
        F = np.ones((2, 3), dtype)
        hals_sweeps(F, F.copy(), np.eye(2, dtype=dtype), 0.0, 0.0, 1)


GOAL_EXCESS = 0.01  # % above scikit-learn's final error
GOAL_SPEEDUP = 3.0  # at most 1/3 of scikit-learn's CPU time


def clocks():
    return time.process_time(), time.perf_counter()


def seed_sklearn(rank: int) -> SkNMF:
    """scikit-learn's NMF with the seed's settings (module docstring)."""
    return SkNMF(n_components=rank, init="nndsvd", solver="cd", tol=1e-4, max_iter=5000, random_state=0)


def relative_error(values: np.ndarray, W: np.ndarray, H: np.ndarray) -> float:
    """``||X - W H||_F / ||X||_F`` in float64 for ``values (cells, windows)``."""
    exact = values.astype(np.float64)
    return float(np.linalg.norm(exact - W.astype(np.float64) @ H.astype(np.float64)) / np.linalg.norm(exact))


def run_pair(name: str, X: xr.DataArray, rank: int) -> dict:
    values = np.asarray(X.values)
    c0, w0 = clocks()
    sk = seed_sklearn(rank)
    W = sk.fit_transform(values)
    c1, w1 = clocks()
    sk_error = relative_error(values, W, sk.components_)
    c2, w2 = clocks()
    ours = NMF(rank).fit(X)
    c3, w3 = clocks()
    row = dict(name=name, shape=f"{values.shape[0]} x {values.shape[1]} {values.dtype.name}", rank=rank,
               sk_iter=int(sk.n_iter_), sk_cpu=c1 - c0, sk_wall=w1 - w0, sk_error=sk_error,
               our_iter=int(ours.n_iter_), our_cpu=c3 - c2, our_wall=w3 - w2,
               our_error=float(ours.reconstruction_error_),
               history=(np.asarray(ours.error_history_seconds_), np.asarray(ours.error_history_.values)))
    row["excess"] = 100 * (row["our_error"] / sk_error - 1)
    seconds, errors = row["history"]
    reached = np.flatnonzero(errors <= sk_error * (1 + GOAL_EXCESS / 100))
    row["reach_wall"] = float(seconds[reached[0]]) if reached.size else float("nan")
    # issue 13's goal: within GOAL_EXCESS % of scikit-learn's final error in at most 1/GOAL_SPEEDUP of its CPU time
    row["goal"] = row["excess"] <= GOAL_EXCESS and row["our_cpu"] * GOAL_SPEEDUP <= row["sk_cpu"]
    print(f"{name:10s} {row['shape']:22s} k={rank:2d} | sklearn {row['sk_iter']:5d} it {row['sk_cpu']:7.2f} s cpu "
          f"{row['sk_wall']:7.2f} s wall err {sk_error:.6f} | ours {row['our_iter']:4d} it {row['our_cpu']:6.2f} s cpu "
          f"{row['our_wall']:6.2f} s wall err {row['our_error']:.6f} | error {row['excess']:+.4f} % | "
          f"cpu {row['sk_cpu'] / row['our_cpu']:.1f}x wall {row['sk_wall'] / row['our_wall']:.1f}x | "
          f"+{GOAL_EXCESS:g} % reached at {row['reach_wall']:.2f} s wall | goal {'met' if row['goal'] else 'MISSED'}",
          flush=True)
    return row


def figure(rows: list, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rows), figsize=(5 * len(rows), 3.6), squeeze=False)
    for ax, row in zip(axes[0], rows):
        seconds, errors = row["history"]
        ax.plot(seconds, errors, ".-", ms=3, label=f"ours (HALS), {row['our_iter']} iterations")
        ax.plot([row["sk_wall"]], [row["sk_error"]], "r*", ms=10,
                label=f"scikit-learn cd final, {row['sk_iter']} iterations")
        ax.axhline(row["sk_error"] * 1.0001, color="r", lw=0.5, ls=":", label="scikit-learn + 0.01 %")
        ax.set_ylim(min(errors.min(), row["sk_error"]) * 0.9995, row["sk_error"] * 1.003)
        ax.set_xlabel("wall seconds since the fit started (init included)")
        ax.set_ylabel("relative error ||X - WH|| / ||X||")
        ax.set_title(f"{row['name']}: {row['shape']}, rank {row['rank']}", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figure: {path}")


def main() -> None:
    parser = matrix_parser(__doc__)
    parser.add_argument("--rank", type=int, default=25)
    parser.add_argument("--demo", help="train.nc of the demo (e.g. domain.resolution: null)")
    parser.add_argument("--eobs", help="train.nc of the E-OBS experiment")
    parser.add_argument("--demo-rank", type=int, default=25)
    parser.add_argument("--eobs-rank", type=int, default=10)
    parser.add_argument("--figure", default="nmf_error_vs_time.png")
    parser.add_argument("--no-synthetic", action="store_true",
                        help="only the --demo/--eobs matrices (no figure: it shows the synthetic ones)")
    parser.add_argument("--suite", action="store_true",
                        help="the matrices of other character (SUITE) instead of common and lognormal")
    parser.add_argument("--only", choices=sorted(SUITE), help="with --suite: just this one")
    args = parser.parse_args()
    threadpool_limits(1)
    dask.config.set(num_workers=1)  # ours on one thread too (its in-memory passes use dask's num_workers)
    warm_up_kernel()
    rows = []
    if args.suite:
        for name in [args.only] if args.only else SUITE:
            X, rank = suite_matrix(name, args.cells, args.windows)
            rows.append(run_pair(name, X, rank))
    elif not args.no_synthetic:
        rows.append(run_pair("common", as_dataarray(rain_matrix(args.cells, args.windows)), args.rank))
        rows.append(run_pair("lognormal", as_dataarray(lognormal_rain_matrix(args.cells, args.windows, args.rank)),
                             args.rank))
    for name, path, rank in (("demo", args.demo, args.demo_rank), ("eobs", args.eobs, args.eobs_rank)):
        if path:
            rows.append(run_pair(name, complete_matrix(path), rank))
    if args.figure and not args.no_synthetic and rows:
        figure([row for row in rows if row["name"] != "eobs"], args.figure)  # E-OBS: ~30 ms, nothing to see


if __name__ == "__main__":
    main()
