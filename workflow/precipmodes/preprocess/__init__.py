"""Pure-xarray preprocessing, one module per operation family (accumulation windows, land mask, wet-area
threshold, train/test split, upscaling); the rules that read and write their files are
:mod:`precipmodes.steps`. No files here (``tests/infra/test_import_rules.py``).
"""
