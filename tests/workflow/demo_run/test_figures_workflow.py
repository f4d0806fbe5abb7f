"""The figure rules inside Snakemake, with all network access blocked, and on the default demo run."""

from __future__ import annotations

import json
import subprocess
import sys

import matplotlib.image as mpimg
import pytest

from helpers import figures_synthetic as fs
from precipmodes.plots import figure_files
from helpers.figures_synthetic import figure_run  # noqa: F401 (session fixture)

pytestmark = pytest.mark.workflow


def test_socket_guard_blocks_the_network(tmp_path):
    probe = "import socket; socket.create_connection(('1.1.1.1', 443), timeout=5)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            env=fs.offline_env(tmp_path))
    assert result.returncode != 0 and "network blocked by the figure tests" in result.stderr


@pytest.mark.network_blocked
def test_figure_rules_run_offline(figure_run):  # noqa: F811
    figures = figure_run / "results" / "small" / "figures"
    dpi = fs.config()["figures"]["dpi"]
    expected_width = {"svd_modes": round((2.6 * 3 + 0.4) * dpi), "spectrum": 10 * dpi, "wet_fraction": 10 * dpi,
                      "test_rmse": 10 * dpi, "svd_coefficients": 9 * dpi}
    for name in fs.FIGURE_NAMES:
        image = mpimg.imread(figures / f"{name}.png")[..., :3]
        assert image.std() > 0.05, f"{name}.png looks blank"
        assert image.shape[0] > 100 and image.shape[1] > 200, name
        if name in expected_width:
            assert image.shape[1] == expected_width[name], name
    summary = json.loads((figure_run / "results" / "small" / "summary.json").read_text())
    assert summary["experiment"] == "small" and summary["synthetic"] is True
    assert set(summary["test_rmse_mm"]) == {"SVD", "NMF", "climatology"}
    assert (figure_run / "results" / "logs" / "figures_modes" / "small.log").read_text().count("done in") >= 1


def test_default_demo_draws_every_figure(demo_run):
    """The default config (SYNTHETIC demo, experiment seed) ends with all figures, demo match included."""
    figures = demo_run / "results" / "seed" / "figures"
    drawn = [path.rsplit("/", 1)[1][:-4] for path in figure_files("results", "seed", demo=True)
             if path.endswith(".png")]
    # rotation, rank_selection and the Hilbert SVD off
    assert set(fs.FIGURE_NAMES) - set(drawn) == {"rotated_modes", "rank_choice", "hilbert_modes"}
    for name in drawn:
        image = mpimg.imread(figures / f"{name}.png")[..., :3]
        assert image.std() > 0.05, f"{name}.png looks blank"
    assert (demo_run / "results" / "seed" / "summary.json").is_file()
