"""The GLOBE 1/120-degree land/water grid of the PyPI package global-land-mask, read over a grid's rows only.

``global_land_mask.globe`` decompresses the whole 21,600 x 43,200 mask (933 MB) when it is imported: 2-4 s and
0.9 GiB in every job that needs land. :func:`globe_land_fraction` streams the package's file instead and keeps
only the rows and columns its points fall in (80 MB for Japan), with the package's own indexing
(``is_land``: the nearest lower grid line, points beyond the grid's last line clamped to it). The file is
inflated by zlib-ng, ~6x faster than Python's zlib on this very compressible mask (933 MB from 2.4 MB).
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import numpy as np
import xarray as xr
from zlib_ng import zlib_ng

from precipmodes.preprocess.landmask import subsample_points

#: the mask's file inside the package global-land-mask (True = ocean)
GLOBE_FILE = "globe_combined_mask_compressed.npz"
#: mask rows decompressed at a time (43,200 bytes each)
ROWS_PER_READ = 256
#: global-land-mask points looked up at once
MAX_POINTS = 4_000_000


def _globe_file() -> Path:
    return Path(importlib.util.find_spec("global_land_mask").origin).parent / GLOBE_FILE


def _axis_index(values: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """``global_land_mask.globe.lat_to_index`` / ``lon_to_index``: the grid line at or below each value."""
    clamped = np.clip(values, axis.min(), axis.max())
    return ((clamped - axis[0]) / (axis[1] - axis[0])).astype(int)


class _Inflated:
    """The deflated member ``name`` of the zip file ``archive`` as a stream to ``read``, inflated by zlib-ng
    as it is read (the zip format's local header and raw deflate data, PKWARE APPNOTE 4.3.7)."""

    def __init__(self, archive: zipfile.ZipFile, name: str):
        info, self.origin = archive.getinfo(name), f"{archive.filename}: {name}"
        with open(archive.filename, "rb") as handle:
            handle.seek(info.header_offset)
            header = handle.read(30)
            if header[:4] != b"PK\x03\x04" or info.compress_type != zipfile.ZIP_DEFLATED:
                raise ValueError(f"{self.origin} is not a deflated zip member")
            handle.seek(int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little"), 1)
            self._pending = handle.read(info.compress_size)
        self._inflate = zlib_ng.decompressobj(-zlib_ng.MAX_WBITS)

    def read(self, size: int) -> bytes:
        """The next ``size`` bytes (fewer at the end of the member)."""
        out = bytearray()
        while len(out) < size and not self._inflate.eof:
            piece = self._inflate.decompress(self._pending, size - len(out))
            self._pending = self._inflate.unconsumed_tail
            if not piece and not self._pending:
                raise ValueError(f"{self.origin}: the compressed data end early (a damaged file)")
            out += piece
        return bytes(out)


def _ocean_rows(archive: zipfile.ZipFile, first: int, last: int, columns: slice) -> np.ndarray:
    """Rows ``first..last`` (inclusive) and ``columns`` of the ocean mask, decompressing the file only up to
    row ``last``."""
    handle = _Inflated(archive, "mask.npy")
    version = np.lib.format.read_magic(handle)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read_header(handle)
    if fortran or dtype != np.bool_ or len(shape) != 2:
        raise ValueError(f"{_globe_file()}: mask.npy is not a C-ordered 2-D boolean array")
    width = shape[1]
    kept = np.empty((last - first + 1, len(range(*columns.indices(width)))), np.bool_)
    row = 0
    while row <= last:
        count = min(ROWS_PER_READ, shape[0] - row)
        block = np.frombuffer(handle.read(count * width), np.bool_).reshape(count, width)
        lo, hi = max(row, first), min(row + count, last + 1)
        if lo < hi:
            kept[lo - first:hi - first] = block[lo - row:hi - row, columns]
        row += count
    return kept


def globe_land_fraction(lat: xr.DataArray, lon: xr.DataArray, subsamples: int = 6) -> xr.DataArray:
    """Land fraction ``(lat, lon)`` float32 in [0, 1]: the share of ``subsamples`` x ``subsamples`` points
    evenly inside each cell that global-land-mask calls land (``globe.is_land``, lakes count as land).

    ``lat``/``lon`` are the grid's 1-D ascending cell centres in degrees.
    """
    sub_lat = np.clip(subsample_points(lat.values, subsamples), -90.0, 90.0)
    sub_lon = (subsample_points(lon.values, subsamples) + 180.0) % 360.0 - 180.0
    with zipfile.ZipFile(_globe_file()) as archive:
        axes = {name: np.load(archive.open(f"{name}.npy")) for name in ("lat", "lon")}
        rows = _axis_index(sub_lat, axes["lat"])  # (lat, subsamples)
        cols = _axis_index(sub_lon.ravel(), axes["lon"])  # (lon * subsamples)
        first, c0 = int(rows.min()), int(cols.min())
        ocean = _ocean_rows(archive, first, int(rows.max()), slice(c0, int(cols.max()) + 1))
    cols = cols - c0
    fraction = np.empty((lat.size, lon.size), dtype=np.float32)
    block = max(1, MAX_POINTS // (cols.size * subsamples))
    for start in range(0, lat.size, block):
        r = (rows[start:start + block] - first).ravel()
        land = ~ocean[r[:, None], cols[None, :]]  # (rows x subsamples, lon x subsamples)
        fraction[start:start + block] = land.reshape(-1, subsamples, lon.size, subsamples).mean(axis=(1, 3))
    return xr.DataArray(fraction, dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
