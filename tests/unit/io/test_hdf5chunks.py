"""Deflated chunks read outside HDF5's pipeline give netCDF-C's values bit for bit: float and packed integers,
shuffled or not, big-endian, partial edge chunks, chunks never written, any basic index; other storage is
left to netCDF-C, and a corrupt chunk stops naming the file."""

from __future__ import annotations

from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from precipmodes.errors import InputDataError
from precipmodes.io.hdf5chunks import MIN_CHUNK_BYTES, DeflatedChunks, deflated_reads

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
SHAPE = (7, 150, 130)  # chunks of (2, 128, 128): partial at the edges of every dimension


def write(path: Path, dtype: str = "f4", shuffle: bool = True, endian: str = "native", packed: bool = False,
          skip: int | None = None) -> np.ndarray:
    """A variable ``pr`` of SHAPE in deflated chunks of (2, 128, 128), NaN (or the fill value) in a corner;
    ``skip``: that time step is never written (its chunks are not allocated). Returns what was written."""
    rng = np.random.default_rng(5)
    values = np.round(rng.exponential(2.0, SHAPE), 1).astype(np.float32)
    values[:, :20, :30] = np.nan
    with netCDF4.Dataset(path, "w") as nc:
        for name, size in zip(("time", "lat", "lon"), SHAPE):
            nc.createDimension(name, size)
            nc.createVariable(name, "f8", (name,))[:] = np.arange(size)
        nc["time"].units = "hours since 2000-01-01"
        fill = -32767 if packed else np.float32(np.nan) if dtype == "f4" else -9999.0
        stored = np.dtype("i2" if packed else dtype).newbyteorder(">" if endian == "big" else "=")
        var = nc.createVariable("pr", stored, ("time", "lat", "lon"), zlib=True, complevel=4,
                                shuffle=shuffle, chunksizes=(2, 128, 128), endian=endian, fill_value=fill)
        var.units = "mm"
        if packed:
            var.scale_factor, var.add_offset = np.float32(0.1), np.float32(0.0)
        for step in range(SHAPE[0]):
            if step != skip:
                var[step] = np.ma.masked_array(np.nan_to_num(values[step]), np.isnan(values[step]))
    return values


def both(path: Path, name: str = "pr") -> tuple[xr.DataArray, xr.DataArray]:
    """``name`` read by netCDF-C and by :class:`DeflatedChunks`."""
    plain = xr.open_dataset(path)[name]
    fast = deflated_reads(xr.open_dataset(path), path, name)[name]
    assert _backend(fast.variable) is not None
    return plain, fast


@pytest.mark.parametrize("case", [dict(), dict(shuffle=False), dict(endian="big"), dict(packed=True),
                                  dict(dtype="f8"), dict(skip=3)], ids=str)
def test_equal_to_netcdf_c(tmp_path, case):
    path = tmp_path / "pr.nc"
    write(path, **case)
    plain, fast = both(path)
    assert fast.dtype == plain.dtype and fast.attrs == plain.attrs
    assert fast.encoding["chunksizes"] == plain.encoding["chunksizes"]
    np.testing.assert_array_equal(fast.values, plain.values)
    if case.get("skip") is not None:  # the chunks never written read as the fill value, masked: NaN
        assert np.isnan(fast.values[3]).all()


def _backend(variable: xr.Variable) -> DeflatedChunks | None:
    """The DeflatedChunks under xarray's lazy wrappers of ``variable`` (None: another reader)."""
    data = variable._data
    for _ in range(6):
        if isinstance(data, DeflatedChunks):
            return data
        data = getattr(data, "array", None)
    return None


def test_the_reader_is_swapped_only_for_deflated_chunks(tmp_path):
    write(tmp_path / "deflated.nc")
    assert _backend(deflated_reads(xr.open_dataset(tmp_path / "deflated.nc"), tmp_path / "deflated.nc",
                                   "pr")["pr"].variable) is not None
    xr.Dataset({"pr": (("time", "lat", "lon"), np.ones((2, 128, 128), np.float32))}).to_netcdf(tmp_path / "plain.nc")
    xr.Dataset({"pr": (("time", "lat", "lon"), np.ones((40, 8, 8), np.float32))}).to_netcdf(
        tmp_path / "small.nc", encoding={"pr": {"zlib": True, "chunksizes": (1, 8, 8)}})  # 256 B chunks
    assert 8 * 8 * 4 < MIN_CHUNK_BYTES
    for name in ("plain.nc", "small.nc"):
        ds = xr.open_dataset(tmp_path / name)
        assert deflated_reads(ds, tmp_path / name, "pr") is ds


def bound(size: int):
    return st.none() | st.integers(-size, size)


keys = st.tuples(*[st.one_of(st.integers(-size, size - 1),
                             st.builds(slice, bound(size), bound(size), st.none() | st.sampled_from([1, 2, 3, -1, -4])))
                   for size in SHAPE])


@settings(max_examples=60, deadline=None)
@given(key=keys)
def test_any_basic_index(tmp_path_factory, key):
    path = tmp_path_factory.getbasetemp() / "indexed.nc"
    if not path.exists():
        write(path, packed=True)
    plain, fast = both(path)
    try:
        expected = plain[key].values
    except IndexError:  # xarray's slicing refuses some empty reversed slices, e.g. [0:0:-1], whatever the reader
        with pytest.raises(IndexError):
            fast[key].values
        return
    np.testing.assert_array_equal(fast[key].values, expected)


def test_a_corrupt_chunk_stops_naming_the_file(tmp_path):
    path = tmp_path / "pr.nc"
    write(path)
    with h5py.File(path) as file:
        info = file["pr"].id.get_chunk_info(1)
    with open(path, "r+b") as raw:
        raw.seek(info.byte_offset + info.size // 2)
        raw.write(b"\x00\xff" * 64)
    with pytest.raises(InputDataError, match=rf"{path}: variable 'pr'.*(corrupt|download or copy it again)"):
        deflated_reads(xr.open_dataset(path), path, "pr")["pr"].values


def test_the_real_e_obs_file():
    path = SHARED / "eobs_iberia_pr_djf_1982-2002.nc"
    plain, fast = both(path)
    assert fast.encoding["shuffle"]  # one deflated, shuffled chunk of 4 MB
    np.testing.assert_array_equal(fast.values, plain.values)
    np.testing.assert_array_equal(fast[100:250, 3:11].values, plain[100:250, 3:11].values)


def test_a_stream_of_reads_inflates_each_chunk_once(tmp_path, monkeypatch):
    """Reads of one step each cut every (2, 128, 128) chunk in two: the part left is kept for the next read."""
    import deflate

    path = tmp_path / "pr.nc"
    values = write(path)
    inflated = []
    real = deflate.zlib_decompress
    monkeypatch.setattr(deflate, "zlib_decompress", lambda data, size: inflated.append(size) or real(data, size))
    fast = deflated_reads(xr.open_dataset(path), path, "pr")["pr"]
    steps = [fast[step].values for step in range(SHAPE[0])]
    np.testing.assert_array_equal(np.stack(steps), values)
    assert len(inflated) == 4 * 2 * 2  # ceil(7 / 2) x ceil(150 / 128) x ceil(130 / 128) chunks


def test_a_file_h5py_cannot_open_is_read_through_netcdf_c(tmp_path, monkeypatch):
    """Where h5py and netCDF-C share one HDF5 library (a conda environment), h5py's open of a file that
    netCDF-C holds open with another close degree fails ("File close degree doesn't match"): the values are
    then read by netCDF-C, the same."""
    import h5py

    path = tmp_path / "pr.nc"
    write(path, packed=True)
    plain, fast = both(path)

    def refuse(*args, **kwargs):
        raise OSError("Unable to synchronously open file (file close degree doesn't match)")

    monkeypatch.setattr(h5py.h5f, "open", refuse)
    np.testing.assert_array_equal(fast[1:6, 10:140].values, plain[1:6, 10:140].values)


@pytest.mark.parametrize("dtype", ["i1", "<i2", ">u2", "<f4", ">f4", "<f8", ">i8"])
def test_unshuffle_is_the_transpose_of_the_byte_planes(dtype):
    """HDF5's shuffle stores byte k of every value in plane k: undoing it is transposing the planes."""
    from precipmodes.io.hdf5chunks import _unshuffle

    itemsize = np.dtype(dtype).itemsize
    planes = np.random.default_rng(itemsize).integers(0, 256, 1000 * itemsize, dtype=np.uint8)
    out = np.empty((10, 100), dtype)
    _unshuffle(planes, out, itemsize)
    assert out.tobytes() == planes.reshape(itemsize, -1).T.tobytes()
