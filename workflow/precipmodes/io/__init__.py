"""Everything that reads or writes files: NetCDF (atomic writes, provenance), the one deletion helper, the
run lock, the archive, the block readers, the matrices and masks read from files, the config file and the
sources of raw precipitation (:mod:`precipmodes.io.sources`).
"""
