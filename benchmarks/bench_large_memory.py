"""SVD and NMF at 1 km scale (300,000 x 2,200 float32) against xeofs and scikit-learn, side by side.

    nice .venv/bin/python benchmarks/bench_large_memory.py [--cells 300000 --windows 2200]
        [--only svd xeofs nmf sklearn]

The matrix (2.64 GB) is written once as a raw float32 ``.npy`` under /tmp, block by block
(never whole in memory): :func:`rain_rows`, smooth Gaussian bumps over cells scattered on
the unit square times shared gamma activations with a 0.9^j spectrum, times lognormal
noise, the driest 40 % of each block set to exactly 0 (the spirit of
``_common.lognormal_rain_matrix``, one set of patterns and activations for all blocks, so
the whole matrix is low rank plus noise). Each fit runs in a fresh process and reports
its wall and CPU seconds and its peak RSS (``ru_maxrss``, taken before any error is
computed), with BLAS limited to ``--threads`` threads (default 1: on a shared 2-core machine
a second BLAS thread waits on a descheduled one and times swing 10x):

* ``svd``: ours, 25 modes (Gram route), the matrix streamed from disk as a dask array of
  20,000-cell blocks read with plain file reads (a memory map would count the page cache);
* ``svd32``: the same with ``gram_dtype="float32"`` (float32 Gram products, float64
  Rayleigh-Ritz); its singular values and modes compared with ``svd``'s;
* ``xeofs``: ``xeofs.single.EOF(n_modes=25, center=False, use_coslat=False)`` on the
  matrix in memory (its singular values compared with ours);
* ``nmf``: ours, rank 25, pipeline defaults (NNDSVD, ``tol`` 1e-4 over the 20-iteration
  window, ``max_iter`` 5000: run to convergence), the matrix in memory as the rule holds
  it when it fits ``resources.mem_mb / 3``;
* ``sklearn``: ``sklearn.decomposition.NMF(25, init='nndsvd', solver='cd', tol=1e-4,
  max_iter=5000, random_state=0)`` (the seed's settings) on the matrix in memory.

Both NMF errors are ``||X - W H||_F / ||X||_F`` computed the same way, block by block in
float64, after the fit. Ratios are printed at the end. Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHUNK = 20000
RANK = 25
KINDS = ("svd", "svd32", "xeofs", "nmf", "sklearn")


def rain_rows(start: int, stop: int, n_windows: int, rank: int = RANK, zero_fraction: float = 0.4) -> np.ndarray:
    """Rows ``start:stop`` of the benchmark matrix, float32 mm (module docstring).

    Patterns and activations come from one seed (shared by all blocks); cell positions and
    noise from a seed per block, so a block is the same whatever the block size around it.
    """
    shared = np.random.default_rng(1)
    centres, widths = shared.random((rank, 2)), 0.1 + 0.3 * shared.random(rank)
    H = shared.gamma(0.5, 1.0, (rank, n_windows)) * (0.9 ** np.arange(rank))[:, None]
    rng = np.random.default_rng(1000 + start)
    cells = rng.random((stop - start, 2))
    W = np.exp(-((cells[:, None, :] - centres[None]) ** 2).sum(axis=2) / (2 * widths ** 2))
    X = (W @ H) * rng.lognormal(0.0, 0.8, (stop - start, n_windows))
    X[X <= np.quantile(X, zero_fraction)] = 0.0
    return X.astype(np.float32)


def build(path: Path, n_cells: int, n_windows: int) -> None:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_cells, n_windows))
    for start in range(0, n_cells, CHUNK):
        stop = min(start + CHUNK, n_cells)
        out[start:stop] = rain_rows(start, stop, n_windows)
    out.flush()
    del out


def layout(path: str) -> tuple[int, int, int, np.dtype]:
    header = np.load(path, mmap_mode="r")
    return header.shape[0], header.shape[1], header.offset, header.dtype


def read_rows(path: str, start: int, stop: int) -> np.ndarray:
    n_cells, n_windows, offset, dtype = layout(path)
    with open(path, "rb") as handle:
        handle.seek(offset + start * n_windows * dtype.itemsize)
        return np.fromfile(handle, dtype=dtype, count=(stop - start) * n_windows).reshape(-1, n_windows)


def read_all(path: str) -> np.ndarray:
    """The whole matrix in memory, read with plain file reads (no memory map)."""
    n_cells, _, _, _ = layout(path)
    return read_rows(path, 0, n_cells)


def read_blocks(path: str):
    """The matrix as a dask array of CHUNK-cell blocks, each read when a task needs it."""
    import dask
    import dask.array as da

    n_cells, n_windows, _, dtype = layout(path)
    blocks = [da.from_delayed(dask.delayed(read_rows)(path, a, min(a + CHUNK, n_cells)),
                              shape=(min(a + CHUNK, n_cells) - a, n_windows), dtype=dtype)
              for a in range(0, n_cells, CHUNK)]
    return da.concatenate(blocks, axis=0)


def relative_error(path: str, W: np.ndarray, H: np.ndarray) -> float:
    """``||X - W H||_F / ||X||_F`` in float64, block by block, for ``W (cells, k)``, ``H (k, time)``."""
    n_cells = layout(path)[0]
    residual = total = 0.0
    H = H.astype(np.float64)
    for start in range(0, n_cells, CHUNK):
        block = read_rows(path, start, min(start + CHUNK, n_cells)).astype(np.float64)
        total += float(np.einsum("ij,ij->", block, block))
        block -= W[start:start + CHUNK].astype(np.float64) @ H
        residual += float(np.einsum("ij,ij->", block, block))
    return float(np.sqrt(residual / total))


def child(path: str, kind: str, threads: int) -> dict:
    import warnings

    import dask
    from threadpoolctl import threadpool_limits

    sys.path.insert(0, str(HERE))
    from _common import as_dataarray

    warnings.simplefilter("ignore")
    # NMF's in-memory passes run on dask's num_workers threads: as many as BLAS gets (the SVD streams its
    # blocks on the threaded scheduler's default workers, as the rule does)
    workers = {"num_workers": threads} if kind == "nmf" else {}
    with threadpool_limits(threads), dask.config.set(**workers):
        return fit(path, kind, as_dataarray)


def fit(path: str, kind: str, as_dataarray) -> dict:
    cpu, wall = time.process_time(), time.perf_counter()
    result: dict = {"kind": kind}
    if kind in ("svd", "svd32"):
        from precipmodes import SVD

        model = SVD(n_modes=RANK, cell_chunk=CHUNK, gram_dtype="float32" if kind == "svd32" else "float64")
        model.fit(as_dataarray(read_blocks(path)))
        result["singular_values"] = model.singular_values_.values.tolist()
        np.save(modes_path(path, kind), model.spatial_modes_.values)
    elif kind == "xeofs":
        from xeofs.single import EOF

        model = EOF(n_modes=RANK, center=False, use_coslat=False, random_state=0)
        model.fit(as_dataarray(read_all(path)), dim="time")
        result["singular_values"] = model.singular_values().values.tolist()
    elif kind == "nmf":
        from precipmodes import NMF

        model = NMF(RANK, cell_chunk=CHUNK).fit(as_dataarray(read_all(path)))
        result["n_iter"] = model.n_iter_
        W = model.basis_.values
        H = model.activations_.values
    else:
        from sklearn.decomposition import NMF as SkNMF

        model = SkNMF(RANK, init="nndsvd", solver="cd", tol=1e-4, max_iter=5000, random_state=0)
        W = model.fit_transform(read_all(path))
        H = model.components_
        result["n_iter"] = int(model.n_iter_)
    result["cpu_s"] = time.process_time() - cpu
    result["wall_s"] = time.perf_counter() - wall
    result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if kind in ("nmf", "sklearn"):
        del model
        result["error"] = relative_error(path, W, H)
    return result


def modes_path(path: str, kind: str) -> Path:
    return Path(f"{path}.{kind}.modes.npy")


def describe(r: dict, matrix_bytes: int) -> str:
    text = (f"{r['kind']:8s} {r['wall_s']:7.1f} s wall, {r['cpu_s']:7.1f} s CPU, peak RSS "
            f"{r['peak_rss'] / 1e9:5.2f} GB = {r['peak_rss'] / matrix_bytes:.2f} x the matrix")
    if "n_iter" in r:
        text += f", {r['n_iter']} iterations, relative error {r['error']:.6f}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=300000)
    parser.add_argument("--windows", type=int, default=2200)
    parser.add_argument("--only", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads of each fit (default 1)")
    parser.add_argument("--path", default="/tmp/precipmodes_bench_large.npy")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.threads)))
        return
    path = Path(args.path)
    try:
        start = time.perf_counter()
        build(path, args.cells, args.windows)
        matrix_bytes = args.cells * args.windows * 4
        print(f"matrix {args.cells} x {args.windows} float32 = {matrix_bytes / 1e9:.2f} GB, built in "
              f"{time.perf_counter() - start:.0f} s; {args.threads} BLAS thread(s) per fit", flush=True)
        results = {}
        for kind in args.only:
            run = subprocess.run([sys.executable, __file__, "--child", str(path), kind, "--threads", str(args.threads)],
                                 capture_output=True, text=True)
            if run.returncode:
                print(f"{kind}: failed (rc {run.returncode}): {run.stderr.strip()[-2000:]}", flush=True)
                continue
            results[kind] = json.loads(run.stdout.strip().splitlines()[-1])
            print(describe(results[kind], matrix_bytes), flush=True)
        for kind in ("svd", "svd32"):
            if {kind, "xeofs"} <= results.keys():
                ours, peer = results[kind], results["xeofs"]
                gap = np.max(np.abs(np.array(ours["singular_values"]) / np.array(peer["singular_values"]) - 1))
                print(f"SVD ({kind}): xeofs / ours {peer['wall_s'] / ours['wall_s']:.2f}x wall, "
                      f"{peer['cpu_s'] / ours['cpu_s']:.2f}x CPU; peak RSS ours {ours['peak_rss'] / matrix_bytes:.2f}x "
                      f"the matrix, xeofs {peer['peak_rss'] / matrix_bytes:.2f}x; singular values differ by at "
                      f"most {gap:.1e} (relative)")
        if {"svd", "svd32"} <= results.keys():
            exact, fast = results["svd"], results["svd32"]
            gap = np.max(np.abs(np.array(fast["singular_values"]) / np.array(exact["singular_values"]) - 1))
            modes = np.linalg.norm(np.load(modes_path(path, "svd32")) - np.load(modes_path(path, "svd")), axis=0)
            print(f"SVD float32 Gram vs float64: {exact['wall_s'] / fast['wall_s']:.2f}x wall, "
                  f"{exact['cpu_s'] / fast['cpu_s']:.2f}x CPU; singular values within {gap:.1e} (relative), "
                  f"modes within {modes.max():.1e} (2-norm of the difference, mode {modes.argmax() + 1})")
        if {"nmf", "sklearn"} <= results.keys():
            ours, peer = results["nmf"], results["sklearn"]
            print(f"NMF: scikit-learn / ours {peer['wall_s'] / ours['wall_s']:.2f}x wall, "
                  f"{peer['cpu_s'] / ours['cpu_s']:.2f}x CPU; peak RSS ours / scikit-learn "
                  f"{ours['peak_rss'] / peer['peak_rss']:.2f}; error ours vs scikit-learn "
                  f"{(ours['error'] / peer['error'] - 1) * 100:+.4f} %")
    finally:
        path.unlink(missing_ok=True)
        for kind in ("svd", "svd32"):
            modes_path(path, kind).unlink(missing_ok=True)


if __name__ == "__main__":
    main()
