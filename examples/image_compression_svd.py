"""SVD low-rank compression of a grayscale image (the seed's SVD tutorial, on scikit-learn's sample image).

The image (427 x 640 pixels, brightness 0..255) is a matrix whose rows are treated as the
"cells" and whose columns are the "samples": ``SVD(n_modes=50).fit(image, dim="x")``. The
rank-k reconstruction keeps the first k modes (``inverse_transform`` of the first k scores);
its relative error ||X - X_k||_F / ||X||_F falls as sqrt(sum_{i>k} s_i^2) / ||X||_F, which the
script checks against the singular values. Writes image_compression_svd.png and prints the
error of each rank. Runs offline: the image ships with scikit-learn.

    python examples/image_compression_svd.py [--out DIR]
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from sklearn.datasets import load_sample_image

from _common import draw_image, output_dir, save_figure
from precipmodes import SVD

RANKS = (1, 2, 5, 10, 20, 50)


def grayscale_image() -> xr.DataArray:
    """scikit-learn's china.jpg as luminance (ITU-R 601 weights): ``(y, x)`` float64, 0..255."""
    rgb = load_sample_image("china.jpg").astype(np.float64)
    gray = rgb @ np.array([0.299, 0.587, 0.114])
    return xr.DataArray(gray, dims=("y", "x"), coords={"y": np.arange(gray.shape[0]), "x": np.arange(gray.shape[1])},
                        name="brightness")


def main() -> dict[int, float]:
    out = output_dir(__doc__.splitlines()[0])
    image = grayscale_image()
    svd = SVD(n_modes=max(RANKS)).fit(image, dim="x")
    scores = svd.scores()  # (mode, x)
    s = svd.singular_values().values
    norm = float(np.linalg.norm(image.values))
    errors, images = {}, {}
    for rank in RANKS:
        approx = svd.inverse_transform(scores.isel(mode=slice(0, rank))).transpose("y", "x")
        errors[rank] = float(np.linalg.norm(image.values - approx.values) / norm)
        images[rank] = approx.values
        # Eckart-Young: the error of the best rank-k approximation from the discarded singular values
        tail = np.sqrt(max(norm ** 2 - float((s[:rank] ** 2).sum()), 0.0)) / norm
        print(f"rank {rank:3d}: relative error {errors[rank]:.4f} (from the singular values {tail:.4f}), "
              f"storage {rank * (image.shape[0] + image.shape[1] + 1) / image.size:.1%} of the pixels")
    fig, axes = plt.subplots(2, 4, figsize=(14, 6))
    panels = [("original", image.values)] + [(f"rank {r}: error {errors[r]:.3f}", images[r]) for r in RANKS]
    for ax, (title, values) in zip(axes.flat, panels):
        draw_image(ax, values, title, title_size=9, cmap="gray", vmin=0, vmax=255)
    ax = axes.flat[-1]
    ax.set_axis_on()
    ax.semilogy(np.arange(1, s.size + 1), s, ".-")
    ax.set_xlabel("mode")
    ax.set_ylabel("singular value")
    ax.set_title("spectrum", fontsize=9)
    save_figure(fig, out, __file__, "SVD compression of a grayscale image (scikit-learn sample image china.jpg)")
    return errors


if __name__ == "__main__":
    main()
