"""Figures of the workflow (maps with offline coastlines, series, spectra) and the report's key numbers.

* :mod:`.base`   - offline coastlines, :class:`FigureOptions`, map panel grids, atomic PNG saving
* :mod:`.maps`   - SVD modes, NMF bases, land mask, test reconstructions, demo truth match
* :mod:`.series` - coefficients with gaps, spectrum with North errors, wet-area fraction, RMSE, bar charts
* :mod:`.render` - the file edge used by the figure rules (open NetCDF, draw, save) and summary.json

This module itself stays light (no matplotlib/cartopy import): the Snakefile reads :data:`FIGURE_RULES`.
"""

__all__ = ["FIGURE_RULES", "figure_files", "experiment_figure_names"]

# figure rule (workflow/rules/figures.smk) -> the PNGs it draws under <results_dir>/<experiment>/figures/
FIGURE_RULES = {
    "figures_selection": ["land_mask", "wet_fraction"],
    "figures_modes": ["svd_modes", "nmf_bases", "spectrum"],
    "figures_series": ["svd_coefficients", "nmf_activations"],
    "figures_test": ["test_reconstructions", "test_coefficients", "test_rmse"],
    "figures_summary": ["summary"],
    "figures_demo": ["demo_match"],
}


def experiment_figure_names(demo: bool) -> list[str]:
    """An experiment's PNGs and summary.json relative to its folder (demo_match.png only for the demo)."""
    names = [name for rule, names in FIGURE_RULES.items() for name in names if demo or rule != "figures_demo"]
    return [f"figures/{name}.png" for name in names] + ["summary.json"]


def figure_files(results_dir: str, experiment: str, demo: bool) -> list[str]:
    """Paths of an experiment's PNGs and summary.json under ``results_dir``."""
    return [f"{results_dir}/{experiment}/{name}" for name in experiment_figure_names(demo)]
