"""precipmodes: principal patterns (SVD modes, NMF components) of gridded precipitation.

The package holds all the logic of the Snakemake workflow; rule scripts call it. Subpackages:
:mod:`~precipmodes.linalg` (array kernels: no xarray, no files), :mod:`~precipmodes.decomposition` (the
estimators), :mod:`~precipmodes.diagnostics`, :mod:`~precipmodes.preprocess` (pure xarray),
:mod:`~precipmodes.io` (every read and write of files, the sources) and :mod:`~precipmodes.steps` (every rule's
``<rule>_files``); ``errors``, ``config``, ``grid`` and ``logs`` serve them all. Functions take and return
xarray objects with their coordinates; only ``io/``, ``steps/``, ``plots/`` and the commands touch files
(``tests/infra/test_import_rules.py``).

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
