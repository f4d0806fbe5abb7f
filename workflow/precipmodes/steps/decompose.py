"""File-level steps of the rules svd, hilbert, nmf, evaluate and rank_selection (I/O at the edges).

Each reads the split matrices (``results/<experiment>/train.nc``, ``test.nc``) and the
land mask's 1-D ``lat``/``lon`` axes, calls the estimators, and writes NetCDF with
:func:`precipmodes.io.netcdf.write_netcdf` (atomic, with provenance).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, Mapping

import xarray as xr

from precipmodes.decomposition.hilbert import HilbertSVD
from precipmodes.decomposition.nmf import NMF
from precipmodes.decomposition.rotation import rotate, rotation_dataset
from precipmodes.decomposition.svd import SVD
from precipmodes.diagnostics.evaluate import evaluate
from precipmodes.diagnostics.rank import cross_validate_ranks
from precipmodes.diagnostics.significance import bootstrap_svd, nmf_rank_stability
from precipmodes.errors import ConfigError, InputDataError, ParameterError
from precipmodes.grid import stack_land
from precipmodes.io.matrix import open_matrix
from precipmodes.io.netcdf import open_netcdf, write_netcdf
from precipmodes.logs import timed
from precipmodes.preprocess.split import require_selection_holds_modes

PathLike = str | os.PathLike
EVALUATION_SKILL_KEYS = ("holdout_fraction", "holdout_seed", "clip_negative")  # evaluation.* keys of evaluate()


def config_keys(name: str, estimator: type | None = None) -> dict[str, str]:
    """Config key of each parameter of the numerics, for experiment ``name``: those of ``estimator`` (SVD,
    HilbertSVD, NMF) from its own ``config_keys`` table (default: of NMF, then SVD), and the others'."""
    keys = {"ranks": f"experiments.{name}.rank_selection", "rotation_method": "svd.rotation.method",
            "rotation_n_modes": "svd.rotation.n_modes", "power": "svd.rotation.power",
            "n_resamples": "svd.bootstrap.n", "block_windows": "svd.bootstrap.block_windows",
            "holdout_fraction": "evaluation.holdout_fraction", "n_seeds": "nmf.stability_seeds",
            "nmf_projection": "evaluation.nmf_projection", "training_windows": f"experiments.{name}.train"}
    for model in [estimator] if estimator else [NMF, SVD]:
        keys |= {parameter: ".".join((model.config_section, *path)) for parameter, path in model.config_keys.items()}
        keys[model.rank_parameter] = f"experiments.{name}.n_modes"
    return keys


def hilbert_config_keys(name: str) -> dict[str, str]:
    """Config key of each :class:`HilbertSVD` parameter, for experiment ``name`` (its rank: svd.hilbert.n_modes)."""
    return {**config_keys(name, HilbertSVD), "n_modes": "svd.hilbert.n_modes"}


@contextlib.contextmanager
def naming_config_keys(keys: Mapping[str, str]) -> Iterator[None]:
    """Re-raise a :class:`ParameterError` of the numerics with the config key of its parameter."""
    try:
        yield
    except ParameterError as exc:
        key = keys.get(exc.parameter, exc.parameter)
        kind = InputDataError if isinstance(exc, InputDataError) else ConfigError
        raise kind(f"{key}: {exc}") from exc


def _grid(land_mask: PathLike):
    mask = open_netcdf(land_mask)
    return mask, mask["lat"], mask["lon"]


def _fit_to_file(estimator, key: str, train: PathLike, land_mask: PathLike, output: PathLike,
                 section: Mapping, name: str, experiment: Mapping, config: Mapping | None,
                 max_in_memory_mb: float | None, title: str, describe, extend=None, n_modes: int | None = None,
                 keys: Mapping[str, str] | None = None) -> Path:
    """Fit ``estimator`` (SVD, HilbertSVD or NMF) on train.nc and write its dataset on the land mask's grid.

    ``extend(model, X, ds, lat, lon)`` (optional) returns variables to add to the dataset; ``n_modes``
    (default: the experiment's) and ``keys`` (default: :func:`config_keys`) where the estimator's
    rank and parameters come from other config keys."""
    with timed(f"{key} ({name})"):
        matrix, X = open_matrix(train, section["cell_chunk"], max_in_memory_mb)
        if "n_windows" in matrix.attrs:  # a train.nc written by split: say what the selection dropped
            require_selection_holds_modes(matrix.attrs, name, experiment["n_modes"])
        _, lat, lon = _grid(land_mask)
        with naming_config_keys(keys or config_keys(name, estimator)):
            model = estimator.from_config(section, experiment["n_modes"] if n_modes is None else n_modes)
            model.fit(X, label=f"experiment '{name}': {train}", source=str(train))
            ds = model.to_dataset(lat, lon)
            if extend is not None:
                ds = ds.merge(extend(model, X, ds, lat, lon), combine_attrs="no_conflicts")
        ds.attrs["experiment"] = name
        return write_netcdf(ds, output, title=f"{title} of experiment {name}", config=config,
                            inputs=[train, land_mask],
                            step=f"{key}: {describe(model, ds)} of experiment {name}")


def svd_files(*, train: PathLike, land_mask: PathLike, output: PathLike, svd: Mapping, name: str,
              experiment: Mapping, config: Mapping | None = None, max_in_memory_mb: float | None = None) -> Path:
    """Rule svd: train.nc -> svd.nc (modes on the land mask's grid).

    Parameters
    ----------
    train, land_mask : path
        The experiment's train.nc (``precip(cell, time)`` mm) and land_mask.nc (its 1-D lat/lon axes).
    output : path
        svd.nc to write: ``spatial_modes(mode, lat, lon)``, ``singular_values(mode)`` mm,
        ``temporal_coefficients(mode, time)`` mm, North errors, gap and rotation variables.
    svd : mapping
        The validated ``svd`` config section (complete: :func:`precipmodes.config.section_defaults`
        fills one outside Snakemake).
    name, experiment : str, mapping
        The experiment's name and its validated config entry (``n_modes``).
    config : mapping, optional
        The whole config, digested into the provenance.
    max_in_memory_mb : float, optional
        Load train.nc into memory when it takes at most this much, else stream it in dask chunks.

    Returns
    -------
    pathlib.Path
        ``output``.
    """
    return _fit_to_file(SVD, "svd", train, land_mask, output, svd, name, experiment, config,
                        max_in_memory_mb, "SVD modes",
                        lambda model, ds: f"{ds.attrs['method']} route, {ds.sizes['mode']} modes",
                        lambda model, X, ds, lat, lon: svd_extras(model, X, svd, lat, lon))


def svd_extras(model: SVD, X, svd: Mapping, lat, lon):
    """Rotated modes (``svd.rotation``) and bootstrap significance (``svd.bootstrap``) for svd.nc, from
    the complete ``svd`` config section (each off by its schema default)."""
    parts = []
    rotation, bootstrap = svd["rotation"], svd["bootstrap"]
    if rotation["method"] != "none":
        with timed(f"svd rotation ({rotation['method']})"):
            rotated = rotate(model.spatial_modes_, model.singular_values_, model.temporal_coefficients_,
                             model.n_windows_, model.total_sum_of_squares_, rotation["method"],
                             n_modes=rotation["n_modes"], power=rotation["power"], kaiser=rotation["kaiser"])
            parts.append(rotation_dataset(rotated, lambda da: model._on_grid(da, lat, lon)))
    if bootstrap["n"]:
        parts.append(bootstrap_svd(model, X, bootstrap["n"], block_windows=bootstrap["block_windows"],
                                   seed=bootstrap["seed"]))
    return xr.merge(parts, combine_attrs="no_conflicts") if parts else xr.Dataset()


def hilbert_files(*, train: PathLike, land_mask: PathLike, output: PathLike, svd: Mapping, name: str,
                  experiment: Mapping, config: Mapping | None = None, max_in_memory_mb: float | None = None) -> Path:
    """Rule hilbert: train.nc -> hilbert.nc (``svd.hilbert.n_modes`` complex modes of the analytic signal).

    Parameters as :func:`svd_files`. ``hilbert.nc`` holds ``amplitude`` and ``phase`` ``(mode, lat, lon)``,
    ``scores_real``/``scores_imag`` ``(mode, time)`` mm, singular values, explained variance and the
    contiguous ``run`` of each window (see :mod:`precipmodes.decomposition.hilbert`). Returns ``output``.
    """
    return _fit_to_file(HilbertSVD, "hilbert", train, land_mask, output, svd, name, experiment, config,
                        max_in_memory_mb, "Hilbert (complex) SVD modes",
                        lambda model, ds: f"{ds.sizes['mode']} complex modes, {ds.attrs['n_runs']} run(s)",
                        n_modes=svd["hilbert"]["n_modes"], keys=hilbert_config_keys(name))


def nmf_files(*, train: PathLike, land_mask: PathLike, output: PathLike, nmf: Mapping, name: str,
              experiment: Mapping, config: Mapping | None = None, max_in_memory_mb: float | None = None) -> Path:
    """Rule nmf: train.nc -> nmf.nc (basis on the land mask's grid).

    Parameters as :func:`svd_files`, with the validated ``nmf`` config section (complete). ``nmf.nc``
    holds ``basis(component, lat, lon)`` (max 1), ``activations(component, time)`` mm, the relative
    reconstruction error and its history. Returns ``output``.
    """
    return _fit_to_file(NMF, "nmf", train, land_mask, output, nmf, name, experiment, config,
                        max_in_memory_mb, "NMF components",
                        lambda model, ds: f"{model.solver} solver, {model.n_components_} components"
                        + (f" kept by ARD of {model.n_components}" if model.ard else ""))


def evaluate_files(*, train: PathLike, test: PathLike, svd: PathLike, nmf: PathLike, land_mask: PathLike,
                   output: PathLike, evaluation: Mapping, name: str, truth: PathLike | None = None,
                   config: Mapping | None = None) -> Path:
    """Rule evaluate: project test.nc on svd.nc/nmf.nc -> evaluation.nc (+ demo truth match).

    Parameters
    ----------
    train, test, svd, nmf, land_mask : path
        The experiment's matrices (``precip(cell, time)`` mm), fitted models and land mask.
    output : path
        evaluation.nc to write: per-window and overall RMSE (mm), pattern correlation, observed
        fraction, reconstructions ``(time, lat, lon)`` mm, hold-out skill.
    evaluation : mapping
        The validated ``evaluation`` config section (complete).
    name : str
        The experiment's name (in messages and attributes).
    truth : path, optional
        demo_truth.nc (demo only): adds the truth-match scores.
    config : mapping, optional
        The whole config, digested into the provenance.

    Returns
    -------
    pathlib.Path
        ``output``.
    """
    with timed(f"evaluate ({name})"):
        _, train_matrix = open_matrix(train)
        test_ds, test_matrix = open_matrix(test)
        mask, lat, lon = _grid(land_mask)
        svd_model = SVD.from_dataset(open_netcdf(svd), train_matrix)
        nmf_model = NMF.from_dataset(open_netcdf(nmf), train_matrix)
        patterns = None
        inputs = [train, test, svd, nmf, land_mask]
        if truth:
            patterns = stack_land(open_netcdf(truth)["patterns"].load(), mask["land"]).sel(cell=train_matrix["cell"])
            inputs.append(truth)
        with naming_config_keys(config_keys(name)):
            ds = evaluate(train_matrix, test_matrix, svd_model, nmf_model, lat, lon, evaluation["nmf_projection"],
                          patterns, label=f"experiment '{name}' ({test})",
                          **{key: evaluation[key] for key in EVALUATION_SKILL_KEYS})
        if "time_bnds" in test_ds:
            ds["time_bnds"] = test_ds["time_bnds"].load()
            ds["time"].attrs["bounds"] = "time_bnds"
        ds.attrs["experiment"] = name
        return write_netcdf(ds, output, title=f"Test-period evaluation of experiment {name}", config=config,
                            inputs=inputs, step=f"evaluate: test windows of experiment {name} projected")


def rank_selection_files(*, train: PathLike, land_mask: PathLike, output: PathLike, nmf: Mapping, name: str,
                         experiment: Mapping, config: Mapping | None = None) -> Path:
    """Rule rank_selection: cross-validated error over the ranks ``experiment["rank_selection"]`` ->
    rank_selection.nc, with the NMF component stability over ``nmf.stability_seeds`` random inits
    (0 = off). ``nmf``: the validated ``nmf`` config section (complete); ``config``, optional: the
    whole config, digested into the provenance."""
    ranks = experiment["rank_selection"]
    with timed(f"rank selection ({name})"):
        _, X = open_matrix(train)
        with naming_config_keys(config_keys(name)):
            ds = cross_validate_ranks(X, ranks, seed=nmf["seed"], label=f"experiment '{name}': {train}")
            if nmf["stability_seeds"]:
                # each rank fitted as it is (ARD would prune it: the stability is of that rank's components)
                fixed_rank = {**nmf, "ard": False}
                ds = ds.merge(nmf_rank_stability(lambda rank: NMF.from_config(fixed_rank, rank), X, ranks,
                                                 nmf["stability_seeds"]), combine_attrs="no_conflicts")
        ds.attrs["experiment"] = name
        return write_netcdf(ds, output, title=f"Rank selection of experiment {name}", config=config,
                            inputs=[train, land_mask], step=f"rank_selection: ranks {ranks} of {name}")
