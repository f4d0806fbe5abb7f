"""Files in the seed's binary layout (the seed_binary source), for the tests of that source and of input changes."""

from __future__ import annotations

import numpy as np
from precipmodes.config import section_defaults


def write_seed(folder, n_windows=4, stamps_as="str"):
    """Mask with land in the north-west corner (stored row 0 = north) and a block near 35N 139E."""
    mask = np.zeros((320, 320), dtype=np.float64)
    mask[0, 0] = 1                      # north-west corner cell: 45.975N, 128.03125E when row 0 is north
    mask[200:203, 170:174] = 1          # 12 cells
    n_land = int(mask.sum())
    data = np.arange(n_windows * n_land, dtype=np.float64).reshape(n_windows, n_land)
    stamps = np.array(["200601010000", "200601040000", "200601070000", "200601100000"][:n_windows])
    paths = {"data": folder / "data.bin", "times": folder / "times.npy", "mask": folder / "mask_x5_y6.npy"}
    data.tofile(paths["data"])
    np.save(paths["times"], stamps.astype(np.int64) if stamps_as == "int" else stamps)
    np.save(paths["mask"], mask)
    source = {"kind": "seed_binary", **section_defaults("source.seed_binary", {k: str(v) for k, v in paths.items()})}
    return source, data, mask
