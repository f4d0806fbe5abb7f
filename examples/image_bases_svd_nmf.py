"""SVD vs NMF bases of a stack of small images (the seed's face example, on scikit-learn's digits).

1,797 handwritten digits of 8 x 8 pixels (brightness 0..16) form a field ``(image, y, x)``;
``fit(digits, dim="image")`` stacks the pixels into cells, drops the pixels that are blank in
every image (as sea cells) and returns the bases on the pixel grid. SVD modes are orthonormal
and mix signs (whole-digit templates and their corrections); NMF components are non-negative
and sparse (strokes that add up to digits). Writes image_bases_svd_nmf.png and prints the
reconstruction error of both at the same rank, the orthonormality of the SVD modes and the
fraction of exactly-zero NMF basis pixels. Runs offline: the digits ship with scikit-learn.

    python examples/image_bases_svd_nmf.py [--out DIR]
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from sklearn.datasets import load_digits

from _common import draw_image, output_dir, save_figure
from precipmodes import NMF, SVD

RANK = 16


def digits() -> xr.DataArray:
    """scikit-learn's digits as ``(image, y, x)`` float64, with the pixels blank in every image as NaN."""
    images = load_digits().images.astype(np.float64)
    field = xr.DataArray(images, dims=("image", "y", "x"),
                         coords={"image": np.arange(images.shape[0]), "y": np.arange(8), "x": np.arange(8)})
    return field.where(field.max("image") > 0)


def relative_error(field: xr.DataArray, model) -> float:
    approx = model.inverse_transform(model.scores()).transpose(*field.dims)
    observed = np.isfinite(field.values)
    return float(np.linalg.norm((field.values - approx.values)[observed]) / np.linalg.norm(field.values[observed]))


def main() -> dict[str, float]:
    out = output_dir(__doc__.splitlines()[0])
    field = digits()
    svd = SVD(n_modes=RANK).fit(field, dim="image")
    nmf = NMF(n_components=RANK, max_iter=2000, tol=1e-6).fit(field, dim="image")
    svd_modes, nmf_basis = svd.components(), nmf.components()  # (mode, y, x), (component, y, x)
    U = svd_modes.stack(pixel=("y", "x")).dropna("pixel").values
    numbers = {
        "svd_relative_error": relative_error(field, svd),
        "nmf_relative_error": relative_error(field, nmf),
        "svd_orthonormality_error": float(np.abs(U @ U.T - np.eye(RANK)).max()),
        "nmf_zero_fraction": float((nmf_basis.values[np.isfinite(nmf_basis.values)] == 0).mean()),
        "svd_negative_fraction": float((U < 0).mean()),
    }
    print(f"{field.sizes['image']} images, {int(np.isfinite(field.isel(image=0)).sum())} of 64 pixels ever inked; "
          f"rank {RANK}")
    for name, value in numbers.items():
        print(f"{name}: {value:.4g}")
    fig, axes = plt.subplots(4, 8, figsize=(12, 6.6))
    for i in range(RANK):
        for row, (name, bases) in enumerate((("SVD", svd_modes), ("NMF", nmf_basis))):
            values = bases.isel({bases.dims[0]: i}).values
            limit = np.nanmax(np.abs(values))
            draw_image(axes[2 * row + i // 8, i % 8], values, f"{name} {i + 1}",
                       cmap="RdBu_r" if name == "SVD" else "Greys", vmin=-limit if name == "SVD" else 0, vmax=limit)
    save_figure(fig, out, __file__, f"Bases of 1,797 handwritten digits: SVD modes (red +, blue -; error "
                f"{numbers['svd_relative_error']:.3f}) and NMF components (error {numbers['nmf_relative_error']:.3f})")
    return numbers


if __name__ == "__main__":
    main()
