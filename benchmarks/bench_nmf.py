"""NMF, rank 25 on a 12,700 x 2,200 matrix: ours (HALS) vs scikit-learn solver='cd', same init and dtype.

    nice .venv/bin/python benchmarks/bench_nmf.py [--cells 12700 --windows 2200 --rank 25]

scikit-learn runs with the seed's settings (init='nndsvd', max_iter=5000, tol=1e-4); ours runs
with a tight tolerance (at most 1000 iterations) and records (elapsed, error) after every iteration; the figure of merit
is the time ours needs to reach scikit-learn's final relative error (init included on both sides).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from sklearn.decomposition import NMF as SkNMF

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import as_dataarray, matrix_parser, rain_matrix, timed  # noqa: E402

from precipmodes.decomposition.nmf import NMF  # noqa: E402


def main() -> None:
    parser = matrix_parser(__doc__)
    parser.add_argument("--rank", type=int, default=25)
    args = parser.parse_args()
    for dtype in (np.float64, np.float32):
        X = rain_matrix(args.cells, args.windows, dtype)
        print(f"\n== {args.cells} x {args.windows} {np.dtype(dtype).name}, rank {args.rank}")
        sk = SkNMF(n_components=args.rank, init="nndsvd", solver="cd", max_iter=5000, tol=1e-4)
        W, t_sk = timed(sk.fit_transform, X)
        sk_error = float(np.linalg.norm(X - W @ sk.components_) / np.linalg.norm(X.astype(np.float64)))
        model, t_ours = timed(NMF(args.rank, init="nndsvd", tol=1e-9, max_iter=1000).fit, as_dataarray(X))
        history = list(zip(model.error_history_seconds_, model.error_history_.values))
        reach = next(((t, i + 1) for i, (t, e) in enumerate(history) if e <= sk_error), (np.nan, None))
        print(f"sklearn cd   {t_sk:8.2f} s  {sk.n_iter_:5d} iterations  relative error {sk_error:.6f}")
        print(f"ours (HALS)  {t_ours:8.2f} s  {model.n_iter_:5d} iterations  relative error "
              f"{model.reconstruction_error_:.6f}")
        print(f"ours reaches sklearn's error after {reach[0]:.2f} s (iteration {reach[1]}): "
              f"{reach[0] / t_sk:.2f} of sklearn's time ({t_sk / reach[0]:.1f}x faster)")


if __name__ == "__main__":
    main()
