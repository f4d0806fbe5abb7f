"""ARD-NMF from k_max = 20 on 12,700 x 2,200 matrices of known rank 3, 6 and 10, beside a plain NMF at the true rank.

    nice .venv/bin/python benchmarks/bench_ard.py [--cells 12700 --windows 2200 --ranks 3 6 10 --k-max 20]
    nice .venv/bin/python benchmarks/bench_ard.py --train results/seed/train.nc   # the default demo's matrix

Each matrix is ``W H`` with gamma(0.6) factors plus Gaussian noise of 0.1 times its standard deviation,
clipped at 0 (as tests/unit/decomposition/test_ard.py, there at 300 x 120). For each rank: the count ARD keeps (it should
be the true rank, +-1), its iterations, seconds and relative error, and the same for a plain HALS NMF
at the true rank (nndsvd init, default tol), side by side. Takes minutes per rank on 2 cores.

With ``--train`` it fits ARD from ``--k-max`` on an experiment's ``train.nc`` instead (gaps and all, as the
nmf rule does) and prints the count kept beside the demo's number of true patterns.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import as_dataarray, matrix_parser, timed  # noqa: E402

from precipmodes.decomposition.nmf import NMF  # noqa: E402
from precipmodes.io.netcdf import open_netcdf  # noqa: E402
from precipmodes.io.sources.demo_model import PATTERNS  # noqa: E402


def known_rank_matrix(n_cells: int, n_windows: int, rank: int, noise: float = 0.1, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    V = rng.gamma(0.6, 1.0, (n_cells, rank)) @ rng.gamma(0.6, 10.0, (rank, n_windows))
    return np.maximum(V + noise * V.std() * rng.standard_normal(V.shape), 0)


def main() -> None:
    parser = matrix_parser(__doc__)
    parser.add_argument("--ranks", type=int, nargs="+", default=[3, 6, 10])
    parser.add_argument("--k-max", type=int, default=20)
    parser.add_argument("--train", type=Path, help="an experiment's train.nc: ARD on its matrix instead")
    args = parser.parse_args()
    if args.train:
        with open_netcdf(args.train) as ds:
            X = ds["precip"].load()
        ard, seconds = timed(NMF(n_components=args.k_max, ard=True, max_iter=5000).fit, X)
        print(f"{args.train}: {X.sizes['cell']} cells x {X.sizes['time']} windows; ARD from k_max {args.k_max} kept "
              f"{ard.n_components_} components in {ard.n_iter_} iterations, {seconds:.1f} s (the demo has "
              f"{len(PATTERNS)} true patterns); relevance {np.array2string(ard.relevance_.values, precision=3)}")
        return
    print(f"{'rank':>4} {'method':<22} {'kept':>4} {'iter':>5} {'seconds':>8} {'rel. error':>10}")
    for rank in args.ranks:
        X = as_dataarray(known_rank_matrix(args.cells, args.windows, rank))
        ard, t_ard = timed(NMF(n_components=args.k_max, ard=True, max_iter=5000).fit, X)
        plain, t_plain = timed(NMF(n_components=rank, max_iter=5000).fit, X)
        for name, model, seconds in ((f"ARD from k_max {args.k_max}", ard, t_ard),
                                     (f"plain NMF at rank {rank}", plain, t_plain)):
            print(f"{rank:>4} {name:<22} {model.n_components_:>4} {model.n_iter_:>5} {seconds:>8.1f} "
                  f"{model.reconstruction_error_:>10.6f}")
        verdict = "ok" if abs(ard.n_components_ - rank) <= 1 else "WRONG"
        print(f"     ARD kept {ard.n_components_} (true {rank}: {verdict}); relevance "
              f"{np.array2string(ard.relevance_.values[:rank + 2], precision=3)}")


if __name__ == "__main__":
    main()
