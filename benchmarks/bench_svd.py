"""SVD, 25 modes of a 12,700 x 2,200 matrix (the seed's size): ours vs dask TSQR, xeofs and scipy's exact gesdd.

    nice .venv/bin/python benchmarks/bench_svd.py [--cells 12700 --windows 2200 --modes 25]

Prints CPU and wall seconds (one BLAS thread unless ``--threads``: CPU ~ work on a shared
machine), speed ratios, the relative difference of the singular values from scipy's exact
ones and the largest subspace angle of the modes, on ``_common.rain_matrix`` (float64 and
float32) and ``_common.lognormal_rain_matrix``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import as_dataarray, clocked, lognormal_rain_matrix, matrix_parser, rain_matrix  # noqa: E402

from precipmodes.decomposition.svd import SVD  # noqa: E402


def main() -> None:
    parser = matrix_parser(__doc__)
    parser.add_argument("--modes", type=int, default=25)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (and dask workers)")
    args = parser.parse_args()
    k = args.modes
    threadpool_limits(args.threads)
    dask.config.set(scheduler="threads", num_workers=args.threads)
    matrices = [(f"rain_matrix {np.dtype(d).name}", rain_matrix(args.cells, args.windows, d))
                for d in (np.float64, np.float32)]
    matrices.append(("lognormal_rain_matrix float64", lognormal_rain_matrix(args.cells, args.windows)))
    for name, X in matrices:
        A = as_dataarray(X)
        print(f"\n== {name} {args.cells} x {args.windows}, {k} modes, {args.threads} BLAS thread(s)")
        (U, s, _), c_exact, t_exact = clocked(scipy.linalg.svd, X.astype(np.float64), full_matrices=False,
                                              lapack_driver="gesdd")
        model, c_ours, t_ours = clocked(SVD(n_modes=k, method="gram").fit, A)
        s_ours = model.singular_values().values
        Xd = da.from_array(X, chunks=(4096, -1))
        (_, s_dask, _), c_dask, t_dask = clocked(lambda: dask.compute(*da.linalg.svd(Xd)))
        t_xeofs = c_xeofs = float("nan")
        try:
            from xeofs.single import EOF

            eof = EOF(n_modes=k, center=False, use_coslat=False, random_state=0)
            _, c_xeofs, t_xeofs = clocked(eof.fit, A, dim="time")
            s_xeofs = eof.singular_values().values
        except Exception as exc:  # xeofs is a test extra; report and go on
            print(f"xeofs failed: {exc}")
            s_xeofs = np.full(k, np.nan)
        rel = np.abs(s_ours / s[:k] - 1)
        angle = scipy.linalg.subspace_angles(model.components().values, U[:, :k]).max()
        print(f"scipy gesdd (exact)  {c_exact:7.2f} s cpu {t_exact:7.2f} s wall   "
              f"ratio scipy/ours cpu {c_exact / c_ours:5.1f}x wall {t_exact / t_ours:5.1f}x")
        print(f"ours (gram)          {c_ours:7.2f} s cpu {t_ours:7.2f} s wall   sigma rel diff max {rel.max():.2e} "
              f"(mode 1 {rel[0]:.1e}, mode {k} {rel[-1]:.1e}), max subspace angle {angle:.1e} rad")
        if X.dtype == np.float32:  # the float32 Gram option on float32 data
            fast, c_fast, t_fast = clocked(SVD(n_modes=k, method="gram", gram_dtype="float32").fit, A)
            rel32 = np.abs(fast.singular_values().values / s[:k] - 1)
            angle32 = scipy.linalg.subspace_angles(fast.components().values, U[:, :k]).max()
            print(f"ours (float32 Gram)  {c_fast:7.2f} s cpu {t_fast:7.2f} s wall   sigma rel diff max "
                  f"{rel32.max():.2e}, max subspace angle {angle32:.1e} rad; float64 Gram / float32 Gram cpu "
                  f"{c_ours / c_fast:4.2f}x")
        print(f"dask TSQR            {c_dask:7.2f} s cpu {t_dask:7.2f} s wall   "
              f"ratio dask/ours cpu {c_dask / c_ours:5.1f}x wall {t_dask / t_ours:5.1f}x   "
              f"sigma rel diff max {np.abs(s_dask[:k] / s[:k] - 1).max():.1e}")
        print(f"xeofs EOF            {c_xeofs:7.2f} s cpu {t_xeofs:7.2f} s wall   "
              f"ratio xeofs/ours cpu {c_xeofs / c_ours:5.1f}x wall {t_xeofs / t_ours:5.1f}x   "
              f"sigma rel diff max {np.abs(s_xeofs / s[:k] - 1).max():.1e}")


if __name__ == "__main__":
    main()
