"""NMF repair of images whose pixels were set to zero (the seed's NMF denoising article, on digits).

An NMF basis (rank 16) is learned from 1,500 clean handwritten digits. In the 297 other digits
a seeded 30 % of the pixels are set to 0, as by a defective sensor. Knowing which pixels are
defective, the repair treats them as missing: :func:`precipmodes.decomposition.projection.fill_gaps` solves
each image's activations by NNLS on its good pixels only and reconstructs the defective ones
from the basis -- the same gap-filling projection the workflow uses for missing cells. Printed:
RMSE on the defective pixels before the repair (the zeros), after it, and when the zeros are
taken as data (projecting the whole damaged image, as the article does). Writes
image_inpainting_nmf.png. Runs offline: the digits ship with scikit-learn.

    python examples/image_inpainting_nmf.py [--out DIR]
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from _common import draw_image, output_dir, save_figure
from sklearn.datasets import load_digits

from precipmodes import NMF
from precipmodes.decomposition.projection import fill_gaps

RANK = 16
N_TRAIN = 1500
DAMAGED_FRACTION = 0.3
SEED = 0


def as_matrix(images: np.ndarray, first: int) -> xr.DataArray:
    """Images ``(n, 8, 8)`` as a ``(cell, time)`` matrix: cells = the 64 pixels, time = image number."""
    n = images.shape[0]
    return xr.DataArray(images.reshape(n, 64).T, dims=("cell", "time"),
                        coords={"cell": np.arange(64), "time": np.arange(first, first + n)})


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def main() -> dict[str, float]:
    out = output_dir(__doc__.splitlines()[0])
    images = load_digits().images.astype(np.float64)
    train, test = as_matrix(images[:N_TRAIN], 0), as_matrix(images[N_TRAIN:], N_TRAIN)
    inked = train.max("time").values > 0  # pixels blank in every training image carry no basis
    train, test = train.isel(cell=np.flatnonzero(inked)), test.isel(cell=np.flatnonzero(inked))
    nmf = NMF(n_components=RANK, max_iter=2000, tol=1e-6).fit(train)

    damaged = np.random.default_rng(SEED).random(test.shape) < DAMAGED_FRACTION
    zeroed = test.copy(data=np.where(damaged, 0.0, test.values))
    missing = test.copy(data=np.where(damaged, np.nan, test.values))
    repaired = fill_gaps(nmf, missing).values
    as_data = fill_gaps(nmf, zeroed).values  # the zeros taken at face value
    truth = test.values
    numbers = {
        "rmse_damaged_before": rmse(zeroed.values[damaged], truth[damaged]),
        "rmse_damaged_repaired": rmse(repaired[damaged], truth[damaged]),
        "rmse_damaged_zeros_as_data": rmse(as_data[damaged], truth[damaged]),
        "rmse_all_before": rmse(zeroed.values, truth),
        "rmse_all_repaired": rmse(np.where(damaged, repaired, truth), truth),
    }
    print(f"NMF rank {RANK} from {N_TRAIN} digits (relative error {float(nmf.reconstruction_error_):.3f}); "
          f"{int(damaged.sum())} of {damaged.size} test pixels ({DAMAGED_FRACTION:.0%}) set to 0")
    for name, value in numbers.items():
        print(f"{name}: {value:.3f} (brightness 0..16)")

    def picture(values: np.ndarray, i: int) -> np.ndarray:
        full = np.zeros(64)
        full[inked] = values[:, i]
        return full.reshape(8, 8)

    shown = range(8)
    fig, axes = plt.subplots(4, len(shown), figsize=(12, 6.4))
    rows = (("original", truth), ("30% pixels set to 0", zeroed.values),
            ("repaired (good pixels kept)", np.where(damaged, repaired, truth)),
            ("zeros taken as data", as_data))
    for r, (title, values) in enumerate(rows):
        for c, i in enumerate(shown):
            draw_image(axes[r, c], picture(values, i), title if c == 0 else "", title_size=9, title_loc="left",
                       cmap="Greys", vmin=0, vmax=16)
    save_figure(fig, out, __file__, f"NMF repair of damaged digits: RMSE on the damaged pixels "
                f"{numbers['rmse_damaged_before']:.2f} (zeros) -> {numbers['rmse_damaged_repaired']:.2f} (repaired)")
    return numbers


if __name__ == "__main__":
    main()
