"""SVD, 25 modes of a 12,700 x 2,200 matrix (the seed's size): ours vs dask TSQR, xeofs and scipy's exact gesdd.

    nice .venv/bin/python benchmarks/bench_svd.py [--cells 12700 --windows 2200 --modes 25]

Prints wall times, speed ratios, the relative difference of the singular values from
scipy's exact ones and the largest subspace angle of the modes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import scipy.linalg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import as_dataarray, rain_matrix, timed  # noqa: E402

from precipmodes.svd import SVD  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=12700)
    parser.add_argument("--windows", type=int, default=2200)
    parser.add_argument("--modes", type=int, default=25)
    args = parser.parse_args()
    k = args.modes
    for dtype in (np.float64, np.float32):
        X = rain_matrix(args.cells, args.windows, dtype)
        A = as_dataarray(X)
        print(f"\n== {args.cells} x {args.windows} {np.dtype(dtype).name}, {k} modes")
        (U, s, _), t_exact = timed(scipy.linalg.svd, X.astype(np.float64), full_matrices=False,
                                   lapack_driver="gesdd")
        model, t_ours = timed(SVD(n_modes=k, method="gram").fit, A)
        s_ours = model.singular_values().values
        Xd = da.from_array(X, chunks=(4096, -1))
        (_, s_dask, _), t_dask = timed(lambda: dask.compute(*da.linalg.svd(Xd)))
        t_xeofs = float("nan")
        try:
            from xeofs.single import EOF

            eof = EOF(n_modes=k, center=False, use_coslat=False, random_state=0)
            _, t_xeofs = timed(eof.fit, A, dim="time")
            s_xeofs = eof.singular_values().values
        except Exception as exc:  # xeofs is a test extra; report and go on
            print(f"xeofs failed: {exc}")
            s_xeofs = np.full(k, np.nan)
        rel = np.abs(s_ours / s[:k] - 1)
        angle = scipy.linalg.subspace_angles(model.components().values, U[:, :k]).max()
        print(f"scipy gesdd (exact)  {t_exact:8.2f} s")
        print(f"ours (gram)          {t_ours:8.2f} s   sigma rel diff max {rel.max():.2e} "
              f"(mode 1 {rel[0]:.1e}, mode {k} {rel[-1]:.1e}), max subspace angle {angle:.1e} rad")
        print(f"dask TSQR            {t_dask:8.2f} s   ratio dask/ours {t_dask / t_ours:6.1f}x   "
              f"sigma rel diff max {np.abs(s_dask[:k] / s[:k] - 1).max():.1e}")
        print(f"xeofs EOF            {t_xeofs:8.2f} s   ratio xeofs/ours {t_xeofs / t_ours:6.1f}x   "
              f"sigma rel diff max {np.abs(s_xeofs / s[:k] - 1).max():.1e}")
        print(f"ratio scipy/ours {t_exact / t_ours:6.1f}x")


if __name__ == "__main__":
    main()
