"""The C allocator: handing freed memory back to the OS (imports nothing heavy: reader processes use it)."""

from __future__ import annotations

import contextlib
import ctypes


def release_freed_memory() -> None:
    """Hand the memory the C allocator holds free back to the OS (glibc ``malloc_trim``; a no-op where
    there is none). After closing a NetCDF file: while a file is open HDF5 keeps bookkeeping for every
    chunk read, and once freed glibc would keep it resident (4 years of hourly maps in one-step chunks:
    ~10 MB per process that read them)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
