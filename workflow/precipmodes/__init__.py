"""precipmodes: principal patterns (SVD modes, NMF components) of gridded precipitation.

The package holds all the logic of the Snakemake workflow; rule scripts call it.
Functions take and return xarray objects with their coordinates; file I/O sits
in :mod:`precipmodes.io.netcdf` and the source readers.

``precipmodes.SVD``, ``precipmodes.HilbertSVD`` and ``precipmodes.NMF`` are imported on first use (PEP 562), so a rule that
needs neither (figures, land mask, raw) does not pay for scipy's and the estimators' imports.
"""

__version__ = "0.1.0"
__all__ = ["HilbertSVD", "NMF", "SVD", "__version__"]


def __getattr__(name: str):
    if name == "NMF":
        from precipmodes.decomposition.nmf import NMF

        return NMF
    if name == "HilbertSVD":
        from precipmodes.decomposition.hilbert import HilbertSVD

        return HilbertSVD
    if name == "SVD":
        from precipmodes.decomposition.svd import SVD

        return SVD
    raise AttributeError(f"module 'precipmodes' has no attribute {name!r}")
