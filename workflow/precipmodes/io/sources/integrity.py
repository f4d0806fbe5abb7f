"""Checks of an input file's bytes and types from its metadata, before any library reads its data.

* :func:`declared_size` reads how many bytes a file's own header says it holds: for classic NetCDF
  (CDF-1, CDF-2, CDF-5) the header, the fixed-size variables and ``numrecs`` records (the
  `format specification <https://docs.unidata.ucar.edu/netcdf-c/current/file_format_specifications.html>`_);
  for HDF5 (NetCDF-4) the superblock's base and end-of-file addresses. A file shorter than that
  was cut off (an interrupted copy or download): netCDF-C reads the missing tail of a classic
  file as zeros without a word, so :func:`check_complete` refuses it first.
* :func:`check_types` refuses, from netCDF-C's metadata read in a child process, variables whose
  type netCDF cannot hand over as numbers. netCDF-C (4.10) takes an HDF5 16-bit float
  (``H5T_IEEE_F16``, what h5py writes for ``float16``) for a variable-length string type: reading
  it dereferences the float bits as string pointers (SIGSEGV), and even closing the file frees the
  misread type ("free(): invalid pointer", abort). So no netCDF-C call on such a file runs in the
  rule's process: the child reports the types and leaves before closing. Such a variable, complex
  (compound), boolean (enum) or string variables are refused naming the file and the variable.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from precipmodes.errors import InputDataError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: classic NetCDF external type sizes (nc_type 1..11: byte, char, short, int, float, double, ubyte,
#: ushort, uint, int64, uint64)
_CLASSIC_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 4, 6: 8, 7: 1, 8: 2, 9: 4, 10: 8, 11: 8}
_STREAMING = 0xFFFFFFFF
#: numpy kinds the precipitation variable may have: floats, signed and unsigned integers (packed)
NUMERIC_KINDS = "fiu"


class _Cut(Exception):
    """The header ends before its own fields do."""


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise _Cut
        chunk = self.data[self.at:self.at + n]
        self.at += n
        return chunk

    def int(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def skip_padded(self, n: int) -> None:
        self.take((n + 3) // 4 * 4)

    def name(self, count: int) -> None:
        """Skip a name (``count``-byte length, padded bytes); ValueError for an implausible length."""
        length = self.int(count)
        if length > 4096:
            raise ValueError
        self.skip_padded(length)

    def listing(self, tag: int, count: int) -> int:
        """The number of elements of a list tagged ``tag`` (ABSENT: zero); ValueError for another tag."""
        found, nelems = self.int(4), self.int(count)
        if found not in (0, tag) or (found == 0 and nelems):
            raise ValueError
        return nelems

    def attributes(self, count: int) -> None:
        """Skip an attribute list."""
        for _ in range(self.listing(0x0C, count)):
            self.name(count)
            kind, nelems = self.int(4), self.int(count)
            self.skip_padded(nelems * _CLASSIC_TYPE_SIZE[kind])


def _classic_size(path: Path) -> tuple[int | None, str]:
    """``(bytes the header declares, what)`` of a classic NetCDF file; ``(None, ...)`` when its header is
    not a valid one (then netCDF-C says what is wrong), ``(-1, ...)`` when the header itself is cut."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        data = handle.read(min(size, 64 * 2**20))  # headers are small; 64 MiB holds any real one
    version = data[3]
    count = 8 if version == 5 else 4                 # NON_NEG: nelems, dimension lengths, numrecs
    offset = 4 if version == 1 else 8                # OFFSET: a variable's begin
    reader = _Reader(data)
    reader.take(4)
    try:
        numrecs = reader.int(count)
        dims = []
        for _ in range(reader.listing(0x0A, count)):
            reader.name(count)
            dims.append(reader.int(count))
        reader.attributes(count)
        variables = []
        for _ in range(reader.listing(0x0B, count)):
            reader.name(count)
            ids = [reader.int(count) for _ in range(reader.int(count))]
            reader.attributes(count)
            kind = reader.int(4)
            reader.int(count)                        # vsize: 32 bits overflow for big variables; recomputed
            begin = reader.int(offset)
            lengths = [dims[i] for i in ids]
            record = bool(lengths) and lengths[0] == 0
            slab = int(np.prod(lengths[1:] if record else lengths, dtype=np.int64)) * _CLASSIC_TYPE_SIZE[kind]
            variables.append((begin, slab, record))
    except _Cut:
        return -1, "its header is cut short"
    except (ValueError, KeyError, IndexError):
        return None, "not a valid classic header"
    header = reader.at
    records = [slab for _, slab, record in variables if record]
    recsize = records[0] if len(records) == 1 else sum((s + 3) // 4 * 4 for s in records)
    ends = [header]
    for begin, slab, record in variables:
        if not record:
            ends.append(begin + slab)
        elif numrecs not in (0, _STREAMING):
            ends.append(begin + (numrecs - 1) * recsize + slab)
    what = (f"its header declares {len(variables)} variables"
            + (f" and {numrecs} records of {recsize} bytes" if records and numrecs != _STREAMING else ""))
    return max(ends), what


def _hdf5_size(path: Path) -> tuple[int | None, str]:
    """``(base + end-of-file address, what)`` from the HDF5 superblock; ``(None, ...)`` when there is none."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        where = 0
        while where + 8 <= size:                    # the superblock sits at 0, 512, 1024, 2048, ...
            handle.seek(where)
            block = handle.read(128)
            if block.startswith(HDF5_SIGNATURE):
                break
            where = 512 if where == 0 else where * 2
        else:
            return None, "no HDF5 superblock"
    version = block[8]
    if version in (0, 1):
        width = block[13]
        start = 24 + (4 if version == 1 else 0)     # base address after the fixed fields
    elif version in (2, 3):
        width = block[9]
        start = 12
    else:
        return None, f"HDF5 superblock version {version}"
    if width not in (2, 4, 8) or len(block) < start + 4 * width:
        return -1, "its HDF5 superblock is cut short"
    fmt = {2: "<H", 4: "<I", 8: "<Q"}[width]
    base = struct.unpack(fmt, block[start:start + width])[0]
    eof_at = start + (3 if version in (0, 1) else 2) * width  # v0/1: base, free space, eof; v2/3: base, ext, eof
    eof = struct.unpack(fmt, block[eof_at:eof_at + width])[0]
    return base + eof, "its HDF5 superblock's end-of-file address says"


def declared_size(path: str | os.PathLike) -> tuple[int | None, str]:
    """``(bytes the file's own header declares, how that was read)`` for classic NetCDF and HDF5 files;
    ``(None, why)`` for other files (GRIB, unknown bytes: the reader's own error names them), ``(-1, why)``
    when the header itself is cut."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head[:3] == b"CDF" and len(head) >= 4 and head[3] in (1, 2, 5):
        return _classic_size(path)
    if path.stat().st_size >= 8:
        return _hdf5_size(path)
    return None, "too short to tell its format"


def check_complete(path: str | os.PathLike) -> None:
    """Raise InputDataError naming ``path`` when it is shorter than its header declares (truncated)."""
    declared, what = declared_size(path)
    if declared is None:
        return
    actual = Path(path).stat().st_size
    if declared == -1 or actual < declared:
        detail = what if declared == -1 else f"{what} {declared} bytes but the file has {actual}"
        raise InputDataError(f"{path}: the file is truncated ({detail}, "
                             f"{0 if declared <= 0 else 100 * actual / declared:.1f} % of it); it was cut off "
                             "(an interrupted copy or download): copy or download it again")


#: files a probe child checks at least: its start (Python, netCDF4's import) costs about what 16 files do
FILES_PER_PROBE = 16
#: run in a child process (netCDF-C must not touch such a file in the rule's process): prints, for each
#: path in argv[2:], the netCDF-C type of the variable argv[1] and of every variable xarray reads on
#: opening (dimension coordinates and the ``coordinates``/``bounds`` they name), then leaves with
#: os._exit, before netCDF-C's close, which frees the misread type and aborts ("free(): invalid pointer")
_PROBE = """
import json, os, sys
import netCDF4
variable, out = sys.argv[1], {}
for path in sys.argv[2:]:
    try:
        nc = netCDF4.Dataset(path)
    except OSError:
        continue
    names = {variable, *nc.dimensions}
    for var in nc.variables.values():
        attrs = var.ncattrs()
        names.update(w for a in ("coordinates", "bounds") if a in attrs for w in str(var.getncattr(a)).split())
    types = {}
    for name in sorted(names & set(nc.variables)):
        var = nc.variables[name]
        datatype = var.datatype
        kind = type(datatype).__name__ if isinstance(datatype, (netCDF4.VLType, netCDF4.CompoundType,
                                                                 netCDF4.EnumType)) else None
        types[name] = [kind, "str" if var.dtype is str else str(var.dtype)]
    out[path] = types
sys.stdout.write(json.dumps(out))
sys.stdout.flush()
os._exit(0)
"""
_ODD = {"VLType": ("a variable-length type: what netCDF-C makes of an HDF5 16-bit float (float16), which it "
                   "cannot read (reading it crashes the process)"),
        "CompoundType": "a compound type (e.g. complex numbers)",
        "EnumType": "an enum type (e.g. boolean)"}
FIX = ("write it as float32 or float64 first, with a tool that reads it (h5py reads float16: "
       "`h5py.File(path)[name][...].astype('float32')`)")


def odd_type(kind: str | None, dtype: str) -> str | None:
    """Why a variable of netCDF4-python type class ``kind`` (VLType, CompoundType, EnumType or None)
    and numpy ``dtype`` (``"str"`` for strings) cannot be read as numbers, or None when it can."""
    if kind is not None:
        return _ODD[kind]
    if dtype == "str":
        return "string, not numbers"
    if np.dtype(dtype).kind not in NUMERIC_KINDS:
        return f"{dtype}, not numbers"
    return None


def check_types(paths: Sequence[str | os.PathLike], variable: str, key: str = "source.files",
                processes: int = 1, meanwhile: Callable[[], object] | None = None) -> None:
    """Refuse files that netCDF cannot read as numbers, from their metadata, read in child processes: up to
    ``processes`` side by side, each for a run of at least :data:`FILES_PER_PROBE` files. ``meanwhile``: called
    in this process while the children probe (work that does not read the files).

    Checked: the precipitation ``variable`` and every variable xarray reads when it opens the file
    (dimension coordinates, the ``coordinates`` and ``bounds`` they name). Raises InputDataError naming
    the file, the variable and the fix. Files netCDF-C cannot open are left to xarray's open, which
    names them; a child that dies names the file it was reading.
    """
    paths = [str(p) for p in paths]
    if not paths:
        return
    run = -(-len(paths) // max(1, min(processes, len(paths) // FILES_PER_PROBE)))
    runs = [paths[start:start + run] for start in range(0, len(paths), run)]
    children = [subprocess.Popen([sys.executable, "-c", _PROBE, variable, *files], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for files in runs]
    try:
        if meanwhile is not None:
            meanwhile()
    finally:
        answers = [child.communicate() for child in children]  # every child waited for, before any refusal
    found = {}
    for files, child, (out, err) in zip(runs, children, answers):
        if child.returncode != 0:
            raise InputDataError(f"{files[0] if len(files) == 1 else f'one of {files}'}: netCDF-C crashed reading "
                                 f"the file's metadata ({err.strip()[-300:] or f'exit {child.returncode}'}); the "
                                 "file is corrupt or of a type netCDF cannot read: write it again as NetCDF")
        found.update(json.loads(out or "{}"))
    for path, types in found.items():
        for name, (kind, dtype) in types.items():
            why = odd_type(kind, dtype)
            if why is not None:
                role = f"the precipitation variable ({key}.variable)" if name == variable else "a coordinate"
                raise InputDataError(f"{path}: variable {name!r}, {role}, is of type {why}; precipmodes reads "
                                     f"numbers only: {FIX.replace('name', repr(name))}")
