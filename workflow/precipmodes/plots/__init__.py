"""Figures of the workflow (maps with offline coastlines, series, spectra) and the report's key numbers.

* :mod:`.base`   - offline coastlines, :class:`FigureOptions`, map panel grids, atomic PNG saving
* :mod:`.maps`   - SVD modes (also rotated), Hilbert modes (amplitude, phase contours), NMF bases, land mask, test
  reconstructions, demo truth match, training mean and spread, regression/correlation maps, local share of
  the first k modes, per-cell skill, SVD beside NMF
* :mod:`.series` - coefficients with gaps, spectrum with North errors, wet-area fraction, RMSE, bar charts,
  rank choice, power spectra and mean seasonal cycle of the coefficients
* :mod:`.render` - the file edge used by the figure rules (open NetCDF, draw, save) and summary.json

This module itself stays light (no matplotlib/cartopy import): the Snakefile reads :data:`FIGURE_RULES`.
"""

__all__ = ["FIGURE_RULES", "figure_files", "experiment_figure_names"]

# figure rule (workflow/rules/figures.smk) -> the PNGs it draws under <results_dir>/<experiment>/figures/
FIGURE_RULES = {
    "figures_selection": ["land_mask", "wet_fraction"],
    "figures_modes": ["svd_modes", "nmf_bases", "spectrum"],
    "figures_fields": ["training_stats", "mode_regression", "mode_correlation", "local_variance", "svd_vs_nmf"],
    "figures_series": ["svd_coefficients", "nmf_activations", "coefficient_spectra", "seasonal_cycle"],
    "figures_test": ["test_reconstructions", "test_coefficients", "test_rmse", "cell_skill"],
    "figures_summary": ["summary"],
    "figures_demo": ["demo_match"],
    "figures_rotated": ["rotated_modes"],
    "figures_rank": ["rank_choice"],
    "figures_hilbert": ["hilbert_modes"],
}
# figure rules drawn only when their condition holds (figure_files' flags of the same name)
CONDITIONAL_RULES = {"figures_demo": "demo", "figures_rotated": "rotated", "figures_rank": "ranked",
                     "figures_hilbert": "hilbert"}


def experiment_figure_names(demo: bool, rotated: bool = False, ranked: bool = False,
                            hilbert: bool = False) -> list[str]:
    """An experiment's PNGs and summary.json relative to its folder (demo_match.png only for the demo,
    rotated_modes.png only when ``svd.rotation.method`` is not ``none``, rank_choice.png only for an
    experiment with ``rank_selection``, hilbert_modes.png only when ``svd.hilbert.n_modes`` > 0)."""
    flags = {"demo": demo, "rotated": rotated, "ranked": ranked, "hilbert": hilbert}
    names = [name for rule, names in FIGURE_RULES.items() for name in names
             if flags.get(CONDITIONAL_RULES.get(rule), True)]
    return [f"figures/{name}.png" for name in names] + ["summary.json"]


def figure_files(results_dir: str, experiment: str, demo: bool, rotated: bool = False,
                 ranked: bool = False, hilbert: bool = False) -> list[str]:
    """Paths of an experiment's PNGs and summary.json under ``results_dir`` (see :func:`experiment_figure_names`)."""
    return [f"{results_dir}/{experiment}/{name}"
            for name in experiment_figure_names(demo, rotated, ranked, hilbert)]
