"""The estimator API on labelled fields (xeofs-like), eofs' reference solutions, warnings and parameter errors."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from helpers.decompose_cases import grid_axes, matrix

from precipmodes import NMF, SVD
from precipmodes.diagnostics.evaluate import evaluate
from precipmodes.errors import ConfigError, ConvergenceWarning, InputDataError, ParameterError
from precipmodes.grid import stack_land
from precipmodes.steps.decompose import config_keys, naming_config_keys
from helpers.decompose_cases import field_with_sea

EPS = np.finfo(np.float64).eps


@pytest.mark.parametrize("weights", ["equal", "latitude"])
def test_svd_equals_eofs_reference_solution(weights):
    """eofs' published SST reference (15 times, 11 x 18 grid with land NaN): eigenvalues and EOFs to rounding."""
    reference = pytest.importorskip("eofs.tests.reference")
    sol = reference.reference_solution("standard", weights)
    sst = np.ma.filled(sol["sst"].astype(np.float64), np.nan)
    field = xr.DataArray(sst, dims=("time", "lat", "lon"), coords={
        "time": np.asarray(sol["time"]), "lat": np.asarray(sol["latitude"]), "lon": np.asarray(sol["longitude"])})
    ref_eig = np.asarray(sol["eigenvalues"])
    ref_eofs = np.ma.filled(sol["eofs"].astype(np.float64), np.nan)
    n = ref_eig.size
    model = SVD(n_modes=n, center=True, area_weighting=weights == "latitude").fit(field, dim="time")
    N = field.sizes["time"]
    # eofs divides by N - 1, we by N
    eig = model.eigenvalues().values * N / (N - 1)
    # Gram route: eigenvalue errors ~ eps * lambda_1 (absolute), eigenvectors ~ eps * lambda_1 / gap
    np.testing.assert_allclose(eig, ref_eig, rtol=0, atol=100 * EPS * ref_eig[0])
    eofs = model.components()
    assert eofs.dims == ("mode", "lat", "lon")
    np.testing.assert_array_equal(np.isnan(eofs.values), np.isnan(ref_eofs))
    gaps = np.minimum(np.abs(np.diff(ref_eig, prepend=np.inf)), np.abs(np.diff(ref_eig, append=-np.inf)))
    for k in range(n):
        sign = np.sign(np.nansum(eofs.values[k] * ref_eofs[k]))
        np.testing.assert_allclose(sign * eofs.values[k], ref_eofs[k], rtol=0,
                                   atol=100 * EPS * ref_eig[0] / gaps[k])


def test_fit_on_a_field_equals_the_pipeline_matrix():
    X = matrix(150, 40, rank=4, noise=0.5, seed=2)
    field, land = field_with_sea(X)
    assert np.isnan(field.values).any()  # grid points off the cells
    cells = stack_land(field, land).transpose("cell", "time")
    for Model, kwargs in ((SVD, dict(n_modes=4, center=True, area_weighting=True)), (NMF, dict(n_components=4))):
        on_field = Model(**kwargs).fit(field, dim="time")
        on_cells = Model(**kwargs).fit(cells)
        comps = on_field.components()
        mode = on_field.mode_dim
        assert comps.dims == (mode, "lat", "lon")
        assert np.isnan(comps.values[:, ~land.values]).all()
        np.testing.assert_array_equal(stack_land(comps, land).transpose("cell", mode).values,
                                      on_cells.components().values)
        assert on_field.scores().dims == (mode, "time")
        np.testing.assert_array_equal(on_field.scores().values, on_cells.scores().values)
        # transform and inverse_transform speak the field's language too
        back = on_field.inverse_transform(on_field.transform(field))
        assert back.dims == ("time", "lat", "lon")
        np.testing.assert_allclose(stack_land(back, land).transpose("cell", "time").values,
                                   on_cells.inverse_transform(on_cells.transform(cells)).values, rtol=1e-12, atol=1e-12)
        ds = on_field.to_dataset()  # on the fitted field's own grid
        assert (ds["spatial_modes" if Model is SVD else "basis"].dims == (mode, "lat", "lon"))
    svd = SVD(n_modes=4).fit(field)
    ratio = svd.explained_variance_ratio()
    assert ratio.dims == ("mode",) and 0 < float(ratio.sum()) <= 1
    np.testing.assert_allclose(ratio, svd.singular_values() ** 2 / np.nansum(field.values ** 2), rtol=1e-12)


def test_other_sample_dimension_names_come_back():
    X = matrix(60, 20, seed=1)
    field, _ = field_with_sea(X)
    renamed = field.rename(time="sample")
    model = SVD(n_modes=3).fit(renamed, dim="sample")
    assert model.scores().dims == ("mode", "sample")


def test_max_iter_ending_the_fit_warns():
    X = matrix(80, 30, rank=3, noise=0.5)
    with pytest.warns(ConvergenceWarning, match="max_iter = 3 iterations"):
        model = NMF(3, max_iter=3, tol=1e-12).fit(X)
    assert not model.converged_ and model.to_dataset(*grid_axes(X)).attrs["converged"] == 0


def test_parameters_are_checked_naming_themselves_and_the_rule_layer_names_the_config_key():
    X = matrix(40, 20)
    with pytest.raises(ParameterError, match="SVD method 'qr'") as info:
        SVD(n_modes=3, method="qr").fit(X)
    assert info.value.parameter == "method"
    with pytest.raises(ParameterError, match="projection method 'lsq'"):
        NMF(3).fit(X).transform(X, method="lsq")
    with pytest.raises(ConfigError, match=r"^svd.method: SVD method 'qr'"):
        with naming_config_keys(config_keys("e1")):
            SVD(n_modes=3, method="qr").fit(X)
    with pytest.raises(InputDataError, match=r"^experiments.e1.n_modes: .*n_components = 30 is larger"):
        with naming_config_keys(config_keys("e1")):
            NMF(30).fit(X)
    train, test = X.isel(time=slice(0, 14)), X.isel(time=slice(14, None))
    with pytest.raises(ConfigError, match=r"^evaluation.nmf_projection: nmf_projection 'lsq' is not one of"):
        with naming_config_keys(config_keys("e1")):
            evaluate(train, test, SVD(n_modes=3).fit(train), NMF(3).fit(train), *grid_axes(X), nmf_projection="lsq")


def test_curvilinear_field_with_2d_coordinates():
    """A (time, y, x) field with 2-D lat/lon: cells carry lat/lon (area weighting works), modes come back on (y, x)."""
    X = matrix(48, 30, rank=3, noise=0.5, seed=4)
    values = X.values.T.reshape(30, 6, 8)
    lat = 30 + np.add.outer(np.arange(6) * 0.5, np.arange(8) * 0.1)
    lon = 120 + np.add.outer(np.arange(6) * 0.1, np.arange(8) * 0.5)
    field = xr.DataArray(values, dims=("time", "y", "x"), coords={
        "time": X["time"], "lat": (("y", "x"), lat), "lon": (("y", "x"), lon)})
    field[:, 0, 0] = np.nan  # a grid point without data
    model = SVD(n_modes=3, area_weighting=True).fit(field)
    assert model.components().dims == ("mode", "y", "x") and np.isnan(model.components().values[:, 0, 0]).all()
    np.testing.assert_allclose(model.weights_.values, np.sqrt(np.cos(np.deg2rad(lat.reshape(-1)[1:]))))
    np.testing.assert_array_equal(model.cells_["lon"].values, lon.reshape(-1)[1:])
