"""Figures of the workflow (maps with offline coastlines, series, spectra) and the report's key numbers.

* :mod:`.base`   - offline coastlines, :class:`FigureOptions`, map panel grids, atomic PNG saving
* :mod:`.maps`   - SVD modes, NMF bases, land mask, test reconstructions, demo truth match
* :mod:`.series` - coefficients with gaps, spectrum with North errors, wet-area fraction, RMSE, bar charts
* :mod:`.render` - the file edge used by the figure rules (open NetCDF, draw, save) and summary.json
"""

from . import render
from .base import FigureOptions, save_figure, use_offline_coastlines

__all__ = ["render", "FigureOptions", "save_figure", "use_offline_coastlines"]
