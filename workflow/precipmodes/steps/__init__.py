"""The workflow's steps: every ``<rule>_files`` function (inputs -> outputs), the rule scripts' helper
(:mod:`precipmodes.steps.rulescript`), the dask set-up, the run hooks, and the file work of the commands
(``precipmodes init``, ``precipmodes summary``). With :mod:`precipmodes.io` the only place that touches files.
"""
