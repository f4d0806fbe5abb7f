"""An HDF5 (NetCDF-4) file whose float32 variables are stored as IEEE 16-bit floats, as h5py writes
``float16`` (h5py is not a dependency): the datatype messages of a file netCDF4 wrote are rewritten in
place and the object headers' checksums (Jenkins lookup3, as HDF5 computes them) recomputed. A real
HDF5 file: HDF5 reads it as float16, netCDF-C misreads the type (tests/workflow/tiny_run/test_bad_inputs.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import netCDF4

_M = 0xFFFFFFFF
#: HDF5 datatype message bodies (class 1 floating point, version 1, little-endian) of float32 / float16
F32 = bytes.fromhex("11201f00" "04000000" "0000" "2000" "17" "08" "00" "17" "7f000000")
F16 = bytes.fromhex("11200f00" "02000000" "0000" "1000" "0a" "05" "00" "0a" "0f000000")


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, HDF5's metadata checksum (H5_checksum_lookup3)."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _M
    i = 0
    while length > 12:
        a = (a + int.from_bytes(data[i:i + 4], "little")) & _M
        b = (b + int.from_bytes(data[i + 4:i + 8], "little")) & _M
        c = (c + int.from_bytes(data[i + 8:i + 12], "little")) & _M
        a = (a - c) & _M; a ^= _rot(c, 4); c = (c + b) & _M      # noqa: E702 (lookup3's mix, as published)
        b = (b - a) & _M; b ^= _rot(a, 6); a = (a + c) & _M      # noqa: E702
        c = (c - b) & _M; c ^= _rot(b, 8); b = (b + a) & _M      # noqa: E702
        a = (a - c) & _M; a ^= _rot(c, 16); c = (c + b) & _M     # noqa: E702
        b = (b - a) & _M; b ^= _rot(a, 19); a = (a + c) & _M     # noqa: E702
        c = (c - b) & _M; c ^= _rot(b, 4); b = (b + a) & _M      # noqa: E702
        i += 12
        length -= 12
    if length == 0:
        return c
    tail = data[i:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _M
    b = (b + int.from_bytes(tail[4:8], "little")) & _M
    c = (c + int.from_bytes(tail[8:12], "little")) & _M
    for x, y, k in (("c", "b", 14), ("a", "c", 11), ("b", "a", 25), ("c", "b", 16), ("a", "c", 4),
                    ("b", "a", 14), ("c", "b", 24)):   # lookup3's final()
        v = {"a": a, "b": b, "c": c}
        v[x] = ((v[x] ^ v[y]) - _rot(v[y], k)) & _M
        a, b, c = v["a"], v["b"], v["c"]
    return c


def float16_file(path: Path, days: int = 12) -> Path:
    """A NetCDF-4 file like reliability_helpers.precip_file (TINY domain, daily, units mm) whose
    ``precip`` is stored as HDF5 float16 (contiguous)."""
    lat, lon = np.arange(30.5, 46.0, 1.0), np.arange(128.5, 148.0, 1.0)
    with netCDF4.Dataset(path, "w") as nc:
        for name, size in (("time", days), ("lat", lat.size), ("lon", lon.size)):
            nc.createDimension(name, size)
        time = nc.createVariable("time", "f8", ("time",))
        time.units = "days since 2006-01-01"
        time[:] = np.arange(days)
        nc.createVariable("lat", "f8", ("lat",))[:] = lat
        nc.createVariable("lon", "f8", ("lon",))[:] = lon
        precip = nc.createVariable("precip", "f4", ("time", "lat", "lon"), contiguous=True)
        precip.units = "mm"
        precip[:] = np.ones((days, lat.size, lon.size), np.float32)
    data = bytearray(path.read_bytes())
    at = data.find(F32)
    assert at > 0 and data.count(F32) == 1, "expected one float32 datatype message"
    data[at:at + len(F16)] = F16
    start = data.rfind(b"OHDR", 0, at)                         # version 2 object header holding it
    flags = data[start + 5]
    pos = start + 6 + (16 if flags & 0x20 else 0) + (4 if flags & 0x10 else 0)
    width = 1 << (flags & 3)
    end = pos + width + int.from_bytes(data[pos:pos + width], "little")
    assert start < at < end
    data[end:end + 4] = lookup3(bytes(data[start:end])).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path
