"""What BLAS oversubscription costs inside dask passes: 1 BLAS thread per task vs BLAS's own count.

    nice .venv/bin/python benchmarks/bench_threads.py [--cells 12700 --windows 2200 --workers 2]

A dask-backed 12,700 x 2,200 float64 matrix (``_common.rain_matrix``, 2,000-cell chunks) goes
through the SVD Gram route and 10 NMF iterations under the threaded scheduler with
``--workers`` workers, once with ``precipmodes.linalg.blocks.TASK_BLAS_THREADS = 1`` (the default:
each task multiplies with one BLAS thread) and once with ``None`` (each task uses BLAS's
default thread count, here ``--blas`` threads, so workers x blas threads share the cores),
interleaved ``--repeats`` times; wall and CPU seconds of each.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import dask
import dask.array as da
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import as_dataarray, clocked, matrix_parser, rain_matrix  # noqa: E402

from precipmodes.decomposition.nmf import NMF  # noqa: E402
from precipmodes.decomposition.svd import SVD  # noqa: E402
from precipmodes.errors import ConvergenceWarning  # noqa: E402
from precipmodes.linalg import blocks as matrix  # noqa: E402


def main() -> None:
    parser = matrix_parser(__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--blas", type=int, default=2, help="BLAS threads when tasks are not limited")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    X = rain_matrix(args.cells, args.windows)
    A = as_dataarray(X).copy(data=da.from_array(X, chunks=(2000, -1)))
    threadpool_limits(args.blas)
    warnings.simplefilter("ignore", ConvergenceWarning)
    results = {}
    with dask.config.set(scheduler="threads", num_workers=args.workers):
        for _ in range(args.repeats):
            for label, limit in (("1 BLAS thread per task", 1), (f"{args.blas} BLAS threads per task", None)):
                matrix.TASK_BLAS_THREADS = limit
                _, c_svd, w_svd = clocked(SVD(25, method="gram").fit, A)
                _, c_nmf, w_nmf = clocked(NMF(25, tol=0, max_iter=10).fit, A)
                results.setdefault(label, []).append((w_svd, c_svd, w_nmf, c_nmf))
    matrix.TASK_BLAS_THREADS = 1
    print(f"{args.cells} x {args.windows} float64 in 2,000-cell dask chunks, threaded scheduler with "
          f"{args.workers} workers; best of {args.repeats} (wall), its CPU seconds")
    for label, runs in results.items():
        w_svd, c_svd, _, _ = min(runs, key=lambda r: r[0])
        _, _, w_nmf, c_nmf = min(runs, key=lambda r: r[2])
        print(f"{label:26s} SVD {w_svd:6.2f} s wall {c_svd:6.2f} s cpu | NMF (10 iterations, init included) "
              f"{w_nmf:6.2f} s wall {c_nmf:6.2f} s cpu")
    (one, many) = results.values()
    print(f"oversubscription costs: SVD {min(r[0] for r in many) / min(r[0] for r in one):.2f}x wall, "
          f"NMF {min(r[2] for r in many) / min(r[2] for r in one):.2f}x wall")


if __name__ == "__main__":
    main()
