"""NMF's H warm-up side by side: ours with it (default), ours without (``h_warmup=0``) and scikit-learn.

    nice .venv/bin/python benchmarks/bench_nmf_warmup.py [--demo results/seed/train.nc]
        [--eobs results/iberia/train.nc] [--no-synthetic]

For each matrix, rank-k NMF three ways from the same settings: ``precipmodes.NMF(k)`` (pipeline
defaults: the first :data:`precipmodes.linalg.hals.H_WARMUP` iterations with one plain H sweep),
``precipmodes.NMF(k, h_warmup=0)`` (accelerated sweeps from the first iteration, the solver before
2026-12-03) and scikit-learn ``NMF(k, init='nndsvd', solver='cd', tol=1e-4, max_iter=5000,
random_state=0)`` (the seed's settings); final relative error ``||X - WH|| / ||X||`` and iterations of
each, and each of ours against scikit-learn in %. One thread for all. Matrices: the synthetic
``_common.rain_matrix`` and ``_common.lognormal_rain_matrix`` (rank 25), the demo's and the E-OBS
``train.nc`` when given (made complete as in ``bench_nmf_peers.py``; E-OBS at its experiment's rank 10
and at 25), and scikit-learn's bundled handwritten digits (1,797 x 64, and transposed; ranks 10 and 20):
a matrix unlike rain, shipped with scikit-learn, so it needs no download. Not a timed test.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import dask
import numpy as np
import xarray as xr
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import as_dataarray, lognormal_rain_matrix, matrix_parser, rain_matrix  # noqa: E402
from bench_nmf_peers import complete_matrix, relative_error, seed_sklearn, warm_up_kernel  # noqa: E402

from precipmodes.decomposition.nmf import NMF  # noqa: E402


def compare(name: str, X: xr.DataArray, rank: int) -> tuple[float, float]:
    values = np.asarray(X.values)
    sk = seed_sklearn(rank)
    sk_error = relative_error(values, sk.fit_transform(values), sk.components_)
    warm, cold = NMF(rank).fit(X), NMF(rank, h_warmup=0).fit(X)
    excess = [100 * (model.reconstruction_error_ / sk_error - 1) for model in (warm, cold)]
    print(f"{name:18s} {values.shape[0]:6d} x {values.shape[1]:5d} k={rank:2d} | sklearn {sk_error:.6f} "
          f"({sk.n_iter_:4d} it) | warm-up {warm.reconstruction_error_:.6f} ({warm.n_iter_:4d} it) {excess[0]:+.4f} % "
          f"| none {cold.reconstruction_error_:.6f} ({cold.n_iter_:4d} it) {excess[1]:+.4f} %", flush=True)
    return excess[0], excess[1]


def digits(transposed: bool) -> xr.DataArray:
    values = load_digits().data.astype(np.float64)
    return xr.DataArray(np.ascontiguousarray(values.T if transposed else values), dims=("cell", "time"))


def main() -> None:
    parser = matrix_parser(__doc__)
    parser.add_argument("--demo", help="train.nc of the demo (e.g. domain.resolution: null)")
    parser.add_argument("--eobs", help="train.nc of the E-OBS experiment")
    parser.add_argument("--no-synthetic", action="store_true", help="leave out the two synthetic matrices")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    threadpool_limits(1)
    dask.config.set(num_workers=1)
    warm_up_kernel()
    cases = []
    if not args.no_synthetic:
        cases += [("rain_matrix", as_dataarray(rain_matrix(args.cells, args.windows)), 25),
                  ("lognormal", as_dataarray(lognormal_rain_matrix(args.cells, args.windows, 25)), 25)]
    if args.demo:
        cases.append(("demo", complete_matrix(args.demo), 25))
    if args.eobs:
        eobs = complete_matrix(args.eobs)
        cases += [("eobs", eobs, 10), ("eobs", eobs, 25)]
    for transposed in (False, True):
        cases += [(f"digits{'^T' if transposed else ''}", digits(transposed), k) for k in (10, 20)]
    rows = [compare(*case) for case in cases]
    worst = np.max(rows, axis=0)
    better = sum(w < c for w, c in rows)
    print(f"worst excess over scikit-learn: warm-up {worst[0]:+.4f} %, none {worst[1]:+.4f} %; "
          f"warm-up lower in {better} of {len(rows)} fits")


if __name__ == "__main__":
    main()
