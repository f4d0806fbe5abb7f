"""Gap-aware SVD and NMF at the seed's size (12,700 x 2,200) against the dense fit of the complete matrix.

The matrix is ``_common.rain_matrix``; 2 % of its entries are hidden at random and 1 % of the
cells lose a whole season (30 consecutive 72-hour windows, ~90 days). Printed side by side:

* SVD (25 modes, gram route): dense fit of the complete matrix vs the gap-aware fit
  (iterative EOF imputation, ``svd.gaps`` defaults), its updates, and the leading modes'
  agreement with the complete fit;
* NMF (rank 25, pipeline defaults): dense fit of the complete matrix vs the gap-aware fit
  (EM inside HALS), iterations, time per iteration and final errors;
* the alternative a user would script: drop every cell with a gap, then xeofs' EOF on what is
  left (how many cells remain, and its time).

Times are CPU seconds of this process (``time.process_time``), with BLAS limited to
``--threads`` threads (default 1), so the ratios hold on a machine shared with other jobs.

Not a timed test: run ``python benchmarks/bench_gaps.py [--cells N --windows T --threads 1]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import dask
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import as_dataarray, rain_matrix  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from precipmodes import NMF, SVD  # noqa: E402


def gappy(X: np.ndarray, random_fraction: float, season_cells: float, season_windows: int, seed: int = 1):
    """``X`` with NaN: ``random_fraction`` of the entries at random, ``season_cells`` of the cells for a season."""
    rng = np.random.default_rng(seed)
    out = X.copy()
    out[rng.random(X.shape) < random_fraction] = np.nan
    cells = rng.choice(X.shape[0], int(round(season_cells * X.shape[0])), replace=False)
    for cell in cells:
        start = rng.integers(0, X.shape[1] - season_windows)
        out[cell, start:start + season_windows] = np.nan
    return out


def timed(func, *args, **kwargs):
    """``(result, CPU seconds of this process)``."""
    start = time.process_time()
    result = func(*args, **kwargs)
    return result, time.process_time() - start


def leading_match(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|cosine| between matching columns of two (cell, mode) arrays."""
    return np.abs((a * b).sum(axis=0)) / (np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=12700)
    parser.add_argument("--windows", type=int, default=2200)
    parser.add_argument("--rank", type=int, default=25)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--only", choices=["svd", "nmf"], help="run one of the two")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (and threads of the in-memory passes)")
    args = parser.parse_args()
    with threadpool_limits(args.threads), dask.config.set(num_workers=args.threads):
        run(args)


def run(args):
    warnings.simplefilter("ignore")
    X = rain_matrix(args.cells, args.windows, np.dtype(args.dtype))
    G = gappy(X, 0.02, 0.01, 30)
    hidden = np.isnan(G)
    print(f"== {args.cells} x {args.windows} {args.dtype}, rank {args.rank}: {hidden.mean():.2%} entries missing, "
          f"{int(hidden.any(axis=1).sum())} of {args.cells} cells have a gap; CPU seconds, {args.threads} BLAS thread(s)")
    complete, gaps = as_dataarray(X), as_dataarray(G)

    dense, t_dense = timed(SVD(n_modes=args.rank, method="gram").fit, complete)
    print(f"SVD dense (complete)  {t_dense:7.2f} s")
    if args.only != "nmf":
        svd_part(args, dense, t_dense, X, G, hidden, gaps)
    if args.only != "svd":
        nmf_part(args, complete, gaps)
    alternative(args, X, hidden, t_dense)


def svd_part(args, dense, t_dense, X, G, hidden, gaps):
    gap, t_gap = timed(SVD(n_modes=args.rank, method="gram").fit, gaps)
    match = leading_match(dense.components().values, gap.components().values)
    recon = gap.inverse_transform(gap.scores()).values
    rms = np.sqrt(np.mean((recon[hidden] - X[hidden]) ** 2))
    mean_fill = np.nanmean(G, axis=1, keepdims=True) * np.ones_like(G)
    rms_mean = np.sqrt(np.mean((mean_fill[hidden] - X[hidden]) ** 2))
    print(f"SVD gap-aware         {t_gap:7.2f} s  = {t_gap / t_dense:.2f}x dense, {gap.gap_iterations_} updates, "
          f"converged {gap.converged_}")
    print(f"    leading 5 modes |cos| vs complete fit: {', '.join(f'{v:.4f}' for v in match[:5])}; "
          f"hidden entries RMSE {rms:.3f} mm (cell-mean fill {rms_mean:.3f} mm)")


def nmf_part(args, complete, gaps):
    dense_nmf, t_dense_nmf = timed(NMF(args.rank).fit, complete)
    gap_nmf, t_gap_nmf = timed(NMF(args.rank).fit, gaps)
    per_dense = t_dense_nmf / dense_nmf.n_iter_
    per_gap = t_gap_nmf / gap_nmf.n_iter_
    print(f"NMF dense (complete)  {t_dense_nmf:7.2f} s  {dense_nmf.n_iter_:4d} iterations  error "
          f"{dense_nmf.reconstruction_error_:.6f}")
    print(f"NMF gap-aware         {t_gap_nmf:7.2f} s  {gap_nmf.n_iter_:4d} iterations  error "
          f"{gap_nmf.reconstruction_error_:.6f} (observed entries) = {t_gap_nmf / t_dense_nmf:.2f}x dense, "
          f"{per_gap / per_dense:.2f}x per iteration")


def alternative(args, X, hidden, t_dense):
    """Drop every cell with a gap, then xeofs; xeofs on the complete matrix as the reference time."""
    keep = ~hidden.any(axis=1)
    print(f"drop cells with a gap: {int(keep.sum())} of {args.cells} cells left"
          + ("" if keep.sum() >= args.rank else f", fewer than {args.rank}: no EOF analysis possible that way"))
    try:
        from xeofs.single import EOF
    except ImportError as exc:
        print(f"xeofs not available ({exc})")
        return
    for name, rows in (("the cells left", keep), ("the complete matrix (no gaps: reference)", slice(None))):
        if np.asarray(X[rows]).shape[0] >= args.rank:
            eof = EOF(n_modes=args.rank, center=False, use_coslat=False, random_state=0)
            _, t_xeofs = timed(eof.fit, as_dataarray(X[rows]), dim="time")
            print(f"xeofs EOF on {name}: {t_xeofs:.2f} s = {t_xeofs / t_dense:.2f}x our dense fit")

if __name__ == "__main__":
    main()
