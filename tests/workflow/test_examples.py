"""The seeds' image examples (examples/*.py) run offline on scikit-learn's bundled data, write their
figure and print numbers whose properties are exact consequences of the methods."""

from __future__ import annotations

import re
import subprocess
import sys

import matplotlib.image as mpimg
import pytest

from helpers.workflow import REPO, offline_prefix

EXAMPLES = REPO / "examples"


def run_example(name: str, out) -> str:
    result = subprocess.run(offline_prefix() + [sys.executable, str(EXAMPLES / name), "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    figure = out / name.replace(".py", ".png")
    image = mpimg.imread(figure)
    assert image.shape[0] > 300 and image.shape[1] > 600, image.shape
    return result.stdout


def numbers(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"^(\w+): ([-+0-9.eE]+)", text, flags=re.M)}


def test_image_compression_svd(tmp_path):
    text = run_example("image_compression_svd.py", tmp_path)
    rows = [tuple(map(float, row)) for row in
            re.findall(r"rank +(\d+): relative error ([0-9.]+) \(from the singular values ([0-9.]+)\)", text)]
    assert [int(r[0]) for r in rows] == [1, 2, 5, 10, 20, 50]
    errors = [r[1] for r in rows]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.5 * errors[0]
    for rank, error, from_singular_values in rows:  # Eckart-Young: the truncated SVD's error is the tail
        assert error == pytest.approx(from_singular_values, abs=2e-4), rank  # both printed to 4 decimals


def test_image_bases_svd_nmf(tmp_path):
    found = numbers(run_example("image_bases_svd_nmf.py", tmp_path))
    assert found["svd_orthonormality_error"] < 1e-12
    # the truncated SVD is the best rank-16 approximation: NMF of the same rank cannot beat it
    assert found["svd_relative_error"] < found["nmf_relative_error"] < 1.5 * found["svd_relative_error"]
    assert found["nmf_zero_fraction"] > 0.3 and found["svd_negative_fraction"] > 0.2  # parts vs signed templates


def test_image_inpainting_nmf(tmp_path):
    found = numbers(run_example("image_inpainting_nmf.py", tmp_path))
    assert found["rmse_damaged_repaired"] < 0.7 * found["rmse_damaged_before"]
    assert found["rmse_damaged_repaired"] < found["rmse_damaged_zeros_as_data"]
    assert found["rmse_all_repaired"] < found["rmse_all_before"]
