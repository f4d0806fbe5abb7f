"""Small synthetic inputs of the figure rules, with exactly the contract's variable names, dims and coords.

The plotting code is the unit under test; these stand in for the upstream stages'
outputs (svd.nc, hilbert.nc, nmf.nc, evaluation.nc, land_mask.nc, selection.nc, test.nc, demo_truth.nc).
Grid: a small Japan box (128-148E, 30-46N), land from the real offline GLOBE mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from precipmodes.decomposition.hilbert import HilbertSVD
from precipmodes.decomposition.nmf import NMF
from precipmodes.decomposition.rotation import rotate, rotation_dataset
from precipmodes.diagnostics.rank import cross_validate_ranks
from precipmodes.diagnostics.significance import nmf_rank_stability
from precipmodes.grid import stack_land, unstack_cells
from precipmodes.io.netcdf import write_netcdf
from precipmodes.plots import FIGURE_RULES

DOMAIN = {"lon": [128.0, 148.0], "lat": [30.0, 46.0]}
TRAIN = ["2006-01-01T00:00+09:00", "2007-01-01T00:00+09:00"]
TEST = ["2007-01-01T00:00+09:00", "2008-01-01T00:00+09:00"]
N_MODES = 6
ROTATED_MODES = 3
RANKS = [2, 4, 6]
HILBERT_MODES = 2


def grid(nlon: int = 40, nlat: int = 32) -> tuple[xr.DataArray, xr.DataArray]:
    dlon, dlat = 20.0 / nlon, 16.0 / nlat
    lon = xr.DataArray(128.0 + dlon * (np.arange(nlon) + 0.5), dims="lon",
                       attrs={"units": "degrees_east", "standard_name": "longitude"})
    lat = xr.DataArray(30.0 + dlat * (np.arange(nlat) + 0.5), dims="lat",
                       attrs={"units": "degrees_north", "standard_name": "latitude"})
    return lat.assign_coords(lat=lat), lon.assign_coords(lon=lon)


def land_mask() -> xr.Dataset:
    from global_land_mask import globe

    lat, lon = grid()
    lat2, lon2 = np.meshgrid(lat.values, lon.values, indexing="ij")
    fraction = np.zeros(lat2.shape)
    offsets = (np.arange(4) + 0.5) / 4 - 0.5
    for dy in offsets:
        for dx in offsets:
            fraction += globe.is_land(lat2 + dy * 0.5, lon2 + dx * 0.5)
    fraction /= offsets.size**2
    ds = xr.Dataset({"land_fraction": (("lat", "lon"), fraction.astype(np.float32)),
                     "land": (("lat", "lon"), (fraction >= 0.5).astype(np.int8))},
                    coords={"lat": lat, "lon": lon}, attrs={"method": "global_land_mask", "source": "GLOBE"})
    return ds


def window_times(start: str, end: str) -> pd.DatetimeIndex:
    return pd.date_range(pd.Timestamp(start).tz_convert("UTC").tz_localize(None),
                         pd.Timestamp(end).tz_convert("UTC").tz_localize(None), freq="72h", inclusive="left")


def selection(rng: np.random.Generator) -> xr.Dataset:
    times = window_times(TRAIN[0], TEST[1])
    fraction = np.clip(rng.beta(2.0, 2.0, times.size), 0, 1)
    return xr.Dataset({"wet_area_fraction": ("time", fraction.astype(np.float32)),
                       "kept": ("time", (fraction >= 0.2).astype(np.int8))},
                      coords={"time": times.values}, attrs={"min_wet_fraction": 0.2})


def patterns(mask: xr.Dataset, n: int) -> xr.DataArray:
    """``n`` smooth bumps on the grid (max 1), pattern = 1..n."""
    lat, lon = mask["lat"], mask["lon"]
    centres = [(33 + 2.5 * (i % 4), 131 + 3.5 * i) for i in range(n)]
    fields = [np.exp(-(((lat - cy) / 2.5) ** 2 + ((lon - cx) / 3.0) ** 2)) for cy, cx in centres]
    da = xr.concat(fields, dim="pattern").transpose("pattern", "lat", "lon")
    return da.assign_coords(pattern=np.arange(1, n + 1))


def matrix(mask: xr.Dataset, times: np.ndarray, rng: np.random.Generator) -> xr.DataArray:
    """precip(cell, time) float32 mm: non-negative mixture of the patterns plus noise."""
    base = patterns(mask, 4)
    amounts = xr.DataArray(rng.gamma(1.0, 20.0, (4, times.size)), dims=("pattern", "time"),
                           coords={"pattern": base["pattern"], "time": times})
    signal = (base * amounts).sum("pattern").transpose("time", "lat", "lon")
    da = stack_land(signal + rng.gamma(0.5, 1.0, signal.shape), mask["land"])
    da.attrs = {"units": "mm", "standard_name": "lwe_thickness_of_precipitation_amount"}
    return da.astype(np.float32).transpose("cell", "time").rename("precip")


def decompositions(train: xr.DataArray, mask: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset]:
    x = train.values.astype(float)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    k = N_MODES
    mode = np.arange(1, k + 1)
    modes = xr.DataArray(u[:, :k].T, dims=("mode", "cell"), coords={"mode": mode, "lat": train["lat"],
                                                                      "lon": train["lon"]})
    lam = s[:k] ** 2 / x.shape[1]
    north = lam * np.sqrt(2.0 / x.shape[1])
    gaps = np.minimum(np.r_[np.inf, lam[:-1] - lam[1:]], np.r_[lam[:-1] - lam[1:], np.inf])
    svd = xr.Dataset({
        "spatial_modes": unstack_cells(modes, mask["lat"], mask["lon"]),
        "singular_values": ("mode", s[:k], {"units": "mm"}),
        "explained_variance_ratio": ("mode", s[:k] ** 2 / np.sum(s**2)),
        "temporal_coefficients": (("mode", "time"), (s[:k, None] * vt[:k]), {"units": "mm"}),
        "eigenvalues": ("mode", lam, {"units": "mm2"}),
        "north_error": ("mode", north, {"units": "mm2"}),
        "separated": ("mode", (gaps > north).astype(np.int8)),
    }, coords={"mode": mode, "time": train["time"]})
    rotated = rotate(modes.transpose("cell", "mode"), svd["singular_values"], svd["temporal_coefficients"],
                     x.shape[1], float(np.sum(s ** 2)), "varimax", ROTATED_MODES)
    svd = svd.merge(rotation_dataset(rotated, lambda da: unstack_cells(da, mask["lat"], mask["lon"])),
                    combine_attrs="no_conflicts")
    from sklearn.decomposition import NMF

    model = NMF(4, init="nndsvd", max_iter=300, random_state=0)
    w = model.fit_transform(x)
    h = model.components_
    scale = w.max(axis=0)
    component = np.arange(1, 5)
    basis = xr.DataArray((w / scale).T, dims=("component", "cell"),
                         coords={"component": component, "lat": train["lat"], "lon": train["lon"]})
    nmf = xr.Dataset({
        "basis": unstack_cells(basis, mask["lat"], mask["lon"]),
        "activations": (("component", "time"), h * scale[:, None], {"units": "mm"}),
        "reconstruction_error": ((), float(np.linalg.norm(x - w @ h) / np.linalg.norm(x)),
                                 {"solver": "sklearn", "n_iter": int(model.n_iter_), "seed": 0}),
    }, coords={"component": component, "time": train["time"]})
    return svd, nmf


def rank_selection(train: xr.DataArray) -> xr.Dataset:
    """rank_selection.nc of the ranks RANKS: cross-validated error and NMF stability over 2 random inits."""
    ranks = cross_validate_ranks(train, RANKS, max_iter=50)
    return ranks.merge(nmf_rank_stability(lambda rank: NMF(rank, max_iter=100), train, RANKS, 2),
                       combine_attrs="no_conflicts")


def evaluation(test: xr.DataArray, svd: xr.Dataset, nmf: xr.Dataset, mask: xr.Dataset, truth: xr.DataArray,
               train: xr.DataArray) -> xr.Dataset:
    u = stack_land(svd["spatial_modes"], mask["land"]).transpose("cell", "mode").values
    w = stack_land(nmf["basis"], mask["land"]).transpose("cell", "component").values
    x = test.values.astype(float)
    a = u.T @ x
    h = np.maximum(np.linalg.pinv(w) @ x, 0)
    clim = np.repeat(train.values.mean(axis=1, keepdims=True), x.shape[1], axis=1)
    out = {}
    coords = {"cell": test["cell"], "lat": test["lat"], "lon": test["lon"], "time": test["time"]}
    for name, rec in (("svd", u @ a), ("nmf", w @ h), ("climatology", clim)):
        rec_da = xr.DataArray(rec, dims=("cell", "time"), coords=coords)
        out[f"{name}_reconstruction"] = unstack_cells(rec_da, mask["lat"], mask["lon"])
        out[f"{name}_rmse"] = ("time", np.sqrt(np.mean((rec - x) ** 2, axis=0)), {"units": "mm"})
        out[f"{name}_rmse_overall"] = ((), float(np.sqrt(np.mean((rec - x) ** 2))), {"units": "mm"})
    basis = stack_land(nmf["basis"], mask["land"]).values
    true = stack_land(truth, mask["land"]).values
    corr = np.corrcoef(np.vstack([true, basis]))[: true.shape[0], true.shape[0]:]
    best = corr.argmax(axis=1)
    out["svd_coefficients"] = (("mode", "time"), a, {"units": "mm"})
    out["nmf_coefficients"] = (("component", "time"), h, {"units": "mm"})
    out["truth_match_component"] = ("pattern", nmf["component"].values[best])
    out["truth_match_correlation"] = ("pattern", corr[np.arange(true.shape[0]), best])
    return xr.Dataset(out, coords={"mode": svd["mode"], "component": nmf["component"], "time": test["time"],
                                   "pattern": truth["pattern"]})


def build(root: Path, experiment: str = "small", seed: int = 0) -> dict[str, Path]:
    """Write every input of the figure rules under ``root/results`` (the workflow's layout); return the paths."""
    rng = np.random.default_rng(seed)
    mask = land_mask()
    sel = selection(rng)
    kept = sel["time"].values[sel["kept"].values.astype(bool)]
    train_times = kept[kept < window_times(*TEST)[0]]
    test_times = kept[kept >= window_times(*TEST)[0]]
    train = matrix(mask, train_times, rng)
    test = matrix(mask, test_times, rng)
    svd, nmf = decompositions(train, mask)
    truth = patterns(mask, 4)
    truth_ds = xr.Dataset({"patterns": truth, "pattern_name": ("pattern", [f"bump {i}" for i in range(1, 5)])})
    prepared, exp = root / "results" / "prepared", root / "results" / experiment
    paths = {
        "land_mask": prepared / "land_mask.nc", "selection": prepared / "selection.nc",
        "demo_truth": prepared / "demo_truth.nc", "train": exp / "train.nc", "test": exp / "test.nc",
        "svd": exp / "svd.nc", "nmf": exp / "nmf.nc", "evaluation": exp / "evaluation.nc",
        "rank_selection": exp / "rank_selection.nc", "hilbert": exp / "hilbert.nc",
    }
    datasets = {
        "land_mask": mask, "selection": sel, "demo_truth": truth_ds, "train": train.to_dataset(),
        "test": test.to_dataset(), "svd": svd, "nmf": nmf,
        "evaluation": evaluation(test, svd, nmf, mask, truth, train),
        "rank_selection": rank_selection(train),
        "hilbert": HilbertSVD(n_modes=HILBERT_MODES).fit(train).to_dataset(mask["lat"], mask["lon"]),
    }
    for name, ds in datasets.items():
        write_netcdf(ds, paths[name], title=f"synthetic figure-test input {name}")
    return paths


def config(experiment: str = "small") -> dict:
    """A workflow config whose experiment matches :func:`build`'s files."""
    return {
        "source": {"kind": "demo", "demo": {"start": TRAIN[0], "end": TEST[1]}},
        "domain": {**DOMAIN, "resolution": [0.5, 0.5]},
        "experiments": {experiment: {"train": TRAIN, "test": TEST, "n_modes": N_MODES, "test_windows": [0, 3],
                                     "rank_selection": RANKS}},
        "figures": {"dpi": 60, "coastline_resolution": "50m"},
        "svd": {"rotation": {"method": "varimax", "n_modes": ROTATED_MODES}, "hilbert": {"n_modes": HILBERT_MODES}},
    }


FIGURE_NAMES = [name for names in FIGURE_RULES.values() for name in names]
SOCKET_GUARD = '''
"""Injected by the figure tests: any connection to a non-local address raises."""
import socket

_connect = socket.socket.connect


def _guarded(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if self.family != socket.AF_UNIX and host not in ("127.0.0.1", "::1", "localhost"):
        raise OSError(f"network blocked by the figure tests: connect to {address!r}")
    return _connect(self, address)


socket.socket.connect = _guarded
'''


def offline_env(folder: Path) -> dict:
    """Environment whose Python processes cannot connect to non-local addresses (sitecustomize guard)."""
    import os

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SOCKET_GUARD)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH", "")]))
    env.pop("CARTOPY_DATA_DIR", None)
    return env


def run_figure_rules(workdir: Path, *extra: str):
    """Run only the figure rules of the workflow in ``workdir`` with the network blocked twice over:
    a fresh network namespace (``unshare -n``, where permitted) and the socket guard."""
    import subprocess
    import sys

    import yaml
    from helpers.workflow import REPO, offline_prefix

    (workdir / "config.yaml").write_text(yaml.safe_dump(config()))
    targets = [f"results/small/figures/{name}.png" for name in FIGURE_NAMES]
    command = offline_prefix() + [
        sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--configfile", str(workdir / "config.yaml"), "--cores", "2", "--allowed-rules", *FIGURE_RULES,
        *extra, "--", *targets]
    return subprocess.run(command, capture_output=True, text=True, timeout=900,
                          env=offline_env(workdir / "guard"))


@pytest.fixture(scope="session")
def figure_run(tmp_path_factory) -> Path:
    """The figure rules run once, offline, on :func:`build`'s synthetic inputs; returns the workdir."""
    workdir = tmp_path_factory.mktemp("figure_run")
    build(workdir)
    result = run_figure_rules(workdir)
    if result.returncode != 0:
        pytest.fail(f"figure rules failed offline ({result.returncode}):\n{result.stdout[-3000:]}\n"
                    f"{result.stderr[-6000:]}")
    return workdir
