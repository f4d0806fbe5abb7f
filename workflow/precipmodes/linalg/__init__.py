"""Array kernels on numpy (and dask) arrays: the chunked passes, the Gram SVD kernels, HALS, ARD, NNLS.

No xarray and no files here, and nothing imported from the other subpackages (``tests/infra/
test_import_rules.py`` checks it): the estimators of :mod:`precipmodes.decomposition` label what these return.
"""
