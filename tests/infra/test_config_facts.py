"""One home per config fact: the schema's enums, ranges and defaults of the estimators' parameters equal the
estimators' own constraints (checked in ``fit``) and defaults, and ``from_config`` reads every parameter's key.
"""

from __future__ import annotations

import dataclasses

import pytest

from precipmodes import NMF, SVD, HilbertSVD
from precipmodes.config import load_schema, section_defaults
from precipmodes.decomposition.base import RANK
from precipmodes.errors import ParameterError

ESTIMATORS = [SVD, NMF, HilbertSVD]
CONSTRAINT_KEYS = ("enum", "type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")


def schema_node(section: str, path: tuple[str, ...]) -> dict:
    node = load_schema()["properties"][section]
    for key in path:
        node = node["properties"][key]
    return node


def defaults(cls) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls)}


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_schema_and_estimator_agree_on_every_parameter_with_a_config_key(cls):
    assert cls.config_keys, cls
    for parameter, path in cls.config_keys.items():
        key = ".".join((cls.config_section, *path))
        node = schema_node(cls.config_section, path)
        stated = {k: node[k] for k in CONSTRAINT_KEYS if k in node}
        assert stated == cls._parameter_constraints[parameter].schema(), f"{key} vs {cls.__name__}.{parameter}"
        assert node["default"] == defaults(cls)[parameter], f"default of {key} vs {cls.__name__}.{parameter}"


def test_the_rank_is_the_experiments_n_modes():
    node = load_schema()["properties"]["experiments"]["additionalProperties"]["properties"]["n_modes"]
    assert {k: node[k] for k in CONSTRAINT_KEYS if k in node} == RANK.schema()
    assert node["default"] == defaults(SVD)["n_modes"] == defaults(NMF)["n_components"]
    # the Hilbert SVD's rank is svd.hilbert.n_modes, where 0 turns the step off (no estimator is made)
    hilbert = schema_node("svd", ("hilbert", "n_modes"))
    assert hilbert["minimum"] == RANK.low - 1 and hilbert["default"] == 0


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda cls: cls.__name__)
def test_from_config_reads_every_key(cls):
    section = section_defaults(cls.config_section)
    assert cls.from_config(section, 3) == cls(**{cls.rank_parameter: 3})  # the schema's defaults are the estimator's
    changed = {}
    for parameter, path in cls.config_keys.items():
        constraint = cls._parameter_constraints[parameter]
        value = (next(v for v in constraint.values if v != defaults(cls)[parameter]) if hasattr(constraint, "values")
                 else not defaults(cls)[parameter] if isinstance(defaults(cls)[parameter], bool)
                 else defaults(cls)[parameter] + 1)
        node = section
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        changed[parameter] = value
    model = cls.from_config(section, 3)
    assert {name: getattr(model, name) for name in changed} == changed


@pytest.mark.parametrize("parameter, value, message", [
    ("max_iter", 0, "NMF max_iter = 0 must be an integer >= 1"),
    ("l1_ratio", 2.0, "NMF l1_ratio = 2.0 must be a number >= 0 and <= 1"),
    ("tol", -1e-4, "NMF tol = -0.0001 must be a number >= 0"),
    ("init", "svd", "NMF init 'svd' is not one of nndsvd, nndsvda, random"),
    ("ard", "yes", "NMF ard = 'yes' must be true or false"),
])
def test_fit_refuses_parameters_outside_their_constraints(parameter, value, message):
    import numpy as np
    import xarray as xr

    X = xr.DataArray(np.random.default_rng(0).random((6, 5)), dims=("cell", "time"),
                     coords={"lat": ("cell", np.arange(6.0)), "lon": ("cell", np.arange(6.0))})
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(".", r"\.")) as info:
        NMF(2, **{parameter: value}).fit(X)
    assert info.value.parameter == parameter


@pytest.mark.parametrize("cls, parameters", [
    (SVD, dict(n_modes=3, method="gram", center=True, area_weighting=True, gram_max_windows=500, gram_dtype="float32",
               power_iterations=2, cell_chunk=7, seed=5, gap_max_iter=9, gap_tol=1e-3)),
    (NMF, dict(n_components=3, solver="hals", init="nndsvda", max_iter=300, tol=1e-3, seed=4, alpha_W=0.01,
               alpha_H=0.02, l1_ratio=0.5, cell_chunk=7, log_every_s=5.0, h_warmup=3, ard=False,
               ard_threshold=2e-3)),
    (HilbertSVD, dict(n_modes=2, padding="none", decay_factor=0.3, center=False, area_weighting=True,
                      gap_max_iter=7, gap_tol=1e-3, cell_chunk=9)),
], ids=lambda v: v.__name__ if isinstance(v, type) else "")
def test_to_dataset_and_from_dataset_round_trip_every_parameter(cls, parameters):
    import numpy as np
    import xarray as xr

    rng = np.random.default_rng(1)
    lat, lon = np.arange(30.0, 34.0), np.arange(130.0, 134.0)
    grid = rng.gamma(0.8, 5.0, size=(48, lat.size, lon.size))
    field = xr.DataArray(grid, dims=("time", "lat", "lon"), coords={
        "time": np.arange(48) * np.timedelta64(3, "D") + np.datetime64("2006-01-01"), "lat": lat, "lon": lon})
    assert set(parameters) == set(defaults(cls)), "list every parameter"
    model = cls(**parameters).fit(field, dim="time")
    ds = model.to_dataset()
    cells = field.stack(cell=("lat", "lon")).transpose("cell", "time")
    cells = cells.drop_vars(["cell", "lat", "lon"]).assign_coords(
        cell=np.arange(cells.sizes["cell"]), lat=("cell", cells["lat"].values), lon=("cell", cells["lon"].values))
    restored = cls.from_dataset(ds, cells)
    assert restored.get_params() == parameters
