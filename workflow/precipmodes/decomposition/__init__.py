"""The estimators (SVD, HilbertSVD, NMF) on labelled ``(cell, time)`` matrices or ``(time, lat, lon)`` fields,
their stacking, checks and results, and the rotation of SVD modes. Pure xarray on top of :mod:`precipmodes.linalg`;
no files (``tests/infra/test_import_rules.py``).
"""
