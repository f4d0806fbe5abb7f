"""precipmodes: principal patterns (SVD modes, NMF components) of gridded precipitation.

The package holds all the logic of the Snakemake workflow; rule scripts call it.
Functions take and return xarray objects with their coordinates; file I/O sits
in :mod:`precipmodes.netcdf` and the source readers.
"""

__version__ = "0.1.0"

from .nmf import NMF  # noqa: E402
from .svd import SVD  # noqa: E402

__all__ = ["NMF", "SVD", "__version__"]
