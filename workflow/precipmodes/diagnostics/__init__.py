"""What is judged of fitted modes: significance, predictive skill, rank choice, the test-period evaluation,
the diagnostic fields beside the modes and an experiment's key numbers. Pure xarray; no files
(``tests/infra/test_import_rules.py``).
"""
