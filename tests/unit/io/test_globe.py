"""The GLOBE land/water grid read over a grid's rows (precipmodes.io.globe) gives what global-land-mask's own
``globe.is_land`` gives, point for point, on grids anywhere on the globe."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import xarray as xr

from precipmodes.io.globe import _Inflated, globe_land_fraction
from precipmodes.preprocess.landmask import subsample_points


def _reference(lat: np.ndarray, lon: np.ndarray, subsamples: int) -> np.ndarray:
    from global_land_mask import globe  # decompresses the whole grid (0.9 GiB)

    sub_lat = np.clip(subsample_points(lat, subsamples), -90.0, 90.0)
    sub_lon = (subsample_points(lon, subsamples) + 180.0) % 360.0 - 180.0
    points = globe.is_land(np.repeat(sub_lat.ravel(), sub_lon.size), np.tile(sub_lon.ravel(), sub_lat.size))
    return points.reshape(lat.size, subsamples, lon.size, subsamples).mean(axis=(1, 3)).astype(np.float32)


@pytest.mark.parametrize("lat, lon, subsamples", [
    (np.arange(30.1, 46.0, 0.2), np.arange(128.125, 148.0, 0.25), 6),  # Japan, the demo's grid
    (np.arange(-89.5, 90.0, 5.0), np.arange(-179.5, 180.0, 5.0), 3),  # the globe, poles and both edges
    (np.arange(-25.0, -10.0, 1.0), np.arange(170.5, 195.0, 1.0), 4),  # across 180 degrees (Fiji)
    (np.array([0.0]), np.array([0.0]), 1),  # one cell
])
def test_fraction_equals_global_land_masks_own_lookup(lat, lon, subsamples):
    got = globe_land_fraction(xr.DataArray(lat, dims="lat"), xr.DataArray(lon, dims="lon"), subsamples)
    assert got.dtype == np.float32 and got.dims == ("lat", "lon")
    np.testing.assert_array_equal(got.values, _reference(lat, lon, subsamples))
    assert 0 < float(got.mean()) < 1 or lat.size == 1



def _zip(path, members, method=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("size", [1, 1000, 2**20])
def test_inflated_member_reads_back_what_zipfile_wrote(tmp_path, size):
    data = (np.random.default_rng(size).random(3 * 2**20) < 0.01).tobytes()  # mostly zeros, as the mask
    with zipfile.ZipFile(_zip(tmp_path / "a.zip", {"first.bin": b"before", "mask.npy": data})) as archive:
        stream = _Inflated(archive, "mask.npy")
        assert b"".join(iter(lambda: stream.read(size), b"")) == data


def test_a_stored_member_is_refused(tmp_path):
    with zipfile.ZipFile(_zip(tmp_path / "a.zip", {"mask.npy": b"x" * 100}, zipfile.ZIP_STORED)) as archive:
        with pytest.raises(ValueError, match="a.zip: mask.npy is not a deflated zip member"):
            _Inflated(archive, "mask.npy")


def test_a_member_cut_short_is_refused(tmp_path):
    data = np.random.default_rng(0).bytes(2**16)
    path = _zip(tmp_path / "a.zip", {"mask.npy": data})
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        size = archive.getinfo("mask.npy").compress_size
    # both headers say the compressed data are half as long as they are (an interrupted copy of the member)
    for signature, field in ((b"PK\x03\x04", 18), (b"PK\x01\x02", 20)):
        at = raw.index(signature) + field
        raw[at:at + 4] = (size // 2).to_bytes(4, "little")
    path.write_bytes(raw)
    with zipfile.ZipFile(path) as archive:
        stream = _Inflated(archive, "mask.npy")
        with pytest.raises(ValueError, match="mask.npy: the compressed data end early"):
            stream.read(len(data))
