"""Peak memory of SVD and NMF on a 300,000 x 2,200 float32 matrix streamed from disk in dask chunks.

    nice .venv/bin/python benchmarks/bench_large_memory.py [--cells 300000 --windows 2200 --nmf-iter 10]

The matrix is written once as a raw float32 memmap under /tmp (row blocks, never whole in
memory); each fit runs in a fresh subprocess that wraps it in a dask array of 20,000-cell
chunks, and reports its peak RSS (ru_maxrss) against the matrix size. NMF iterations are
capped (--nmf-iter) to keep the run short on 2 cores; memory per iteration is constant.
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


def build(path: Path, n_cells: int, n_windows: int) -> None:
    sys.path.insert(0, str(HERE))
    from _common import rain_matrix

    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n_cells, n_windows))
    for start in range(0, n_cells, CHUNK):
        stop = min(start + CHUNK, n_cells)
        out[start:stop] = rain_matrix(stop - start, n_windows, np.float32, seed=start)
    out.flush()


def child(path: str, kind: str, nmf_iter: int) -> None:
    sys.path.insert(0, str(HERE))
    from _common import as_dataarray

    from precipmodes.nmf import NMF
    from precipmodes.svd import SVD

    X = as_dataarray(read_blocks(path))
    start = time.perf_counter()
    if kind == "svd":
        SVD(n_modes=25, cell_chunk=CHUNK).fit(X)
    else:
        NMF(25, max_iter=nmf_iter, tol=0, cell_chunk=CHUNK).fit(X)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"kind": kind, "seconds": time.perf_counter() - start, "peak_rss": peak,
                      "matrix_bytes": int(X.nbytes)}))


def read_blocks(path: Path):
    """The .npy matrix as a dask array of CHUNK-cell blocks read with plain file reads.

    A memory map would count every page it touched in the process's RSS (page cache, not
    memory the computation holds), so blocks are read into ordinary arrays instead.
    """
    import dask
    import dask.array as da

    header = np.load(path, mmap_mode="r")
    n_cells, n_windows = header.shape
    offset, dtype = header.offset, header.dtype
    del header

    def block(start: int, stop: int) -> np.ndarray:
        with open(path, "rb") as handle:
            handle.seek(offset + start * n_windows * dtype.itemsize)
            return np.fromfile(handle, dtype=dtype, count=(stop - start) * n_windows).reshape(-1, n_windows)

    blocks = [da.from_delayed(dask.delayed(block)(a, min(a + CHUNK, n_cells)),
                              shape=(min(a + CHUNK, n_cells) - a, n_windows), dtype=dtype)
              for a in range(0, n_cells, CHUNK)]
    return da.concatenate(blocks, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=300000)
    parser.add_argument("--windows", type=int, default=2200)
    parser.add_argument("--nmf-iter", type=int, default=10)
    parser.add_argument("--path", default="/tmp/precipmodes_bench_large.npy")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.nmf_iter)
        return
    path = Path(args.path)
    try:
        start = time.perf_counter()
        build(path, args.cells, args.windows)
        print(f"matrix {args.cells} x {args.windows} float32 = {path.stat().st_size / 1e9:.2f} GB on disk, "
              f"built in {time.perf_counter() - start:.0f} s")
        for kind in ("svd", "nmf"):
            result = subprocess.run([sys.executable, __file__, "--child", str(path), kind,
                                     "--nmf-iter", str(args.nmf_iter)], capture_output=True, text=True, check=True)
            r = json.loads(result.stdout.strip().splitlines()[-1])
            print(f"{kind}: {r['seconds']:.0f} s, peak RSS {r['peak_rss'] / 1e9:.2f} GB = "
                  f"{r['peak_rss'] / r['matrix_bytes']:.2f} x the matrix ({r['matrix_bytes'] / 1e9:.2f} GB)"
                  + (f", {args.nmf_iter} iterations" if kind == "nmf" else ""))
    finally:
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
