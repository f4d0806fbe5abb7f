"""Automatic relevance determination for NMF (ARD-NMF; Tan & Févotte 2013), Euclidean cost.

Model (method notes and references: ``docs/methods/hilbert_ard.md``): ``X = W H + E`` with
Gaussian noise of variance ``sigma^2``, half-normal priors of scale ``lambda_k`` on column ``k``
of ``W`` and row ``k`` of ``H`` (one relevance weight per component), and inverse-gamma
priors ``IG(a, b)`` on the ``lambda_k``. The MAP objective times ``sigma^2`` is

    0.5 ||X - W H||^2 + sigma^2 sum_k [ (0.5 ||w_k||^2 + 0.5 ||h_k||^2 + b) / lambda_k + c log lambda_k ],
    c = (cells + windows) / 2 + a + 1,

so for fixed ``lambda`` each HALS update of ``w_k``/``h_k`` carries the L2 penalty
``sigma^2 / lambda_k`` (:meth:`ArdPrior.penalties`), and for fixed factors
``lambda_k = (0.5 ||w_k||^2 + 0.5 ||h_k||^2 + b) / c`` (:meth:`ArdPrior.update`). A component
the data do not need shrinks to 0 and its ``lambda_k`` falls to the bound ``b / c``.
``sigma^2`` is re-estimated every iteration as the mean squared residual of the observed
entries. Hyperparameters as Tan & Févotte recommend: ``a = log(cells + windows)``,
``b = (pi / 2) (a - 1) mean(X) / k_max``.

Relevance of component ``k``: ``lambda_k / (b / c) - 1``, 0 for a switched-off component;
components below :data:`PRUNE_THRESHOLD` (default of ``nmf.ard_threshold``) are pruned.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from precipmodes.linalg.hals import STOP_WINDOW

PRUNE_THRESHOLD = 1e-3


@dataclass
class ArdPrior:
    """Relevance weights ``lambda_k`` and noise variance of an ARD-NMF fit (module docstring)."""

    lam: np.ndarray  # (k,) relevance weights
    sigma2: float  # noise variance, mm^2
    b: float
    c: float
    n_observed: int
    history: deque = field(default_factory=lambda: deque(maxlen=STOP_WINDOW + 1))

    @classmethod
    def start(cls, W: np.ndarray, H: np.ndarray, err2: float, n_cells: int, n_windows: int,
              n_observed: int, mean: float) -> "ArdPrior":
        """Prior for the starting factors ``W (cells, k)``, ``H (k, time)`` with squared residual ``err2``."""
        k = H.shape[0]
        a = np.log(n_cells + n_windows)
        b = np.pi / 2 * (a - 1) * mean / k
        c = (n_cells + n_windows) / 2 + a + 1
        prior = cls(np.ones(k), err2 / n_observed, b, c, n_observed)
        w2 = np.einsum("ij,ij->j", W, W, dtype=np.float64)
        h2 = np.einsum("ij,ij->i", H, H, dtype=np.float64)
        prior.update(w2, h2, err2)
        return prior

    @property
    def bound(self) -> float:
        """The least ``lambda_k``, reached by a component that is switched off: ``b / c``."""
        return self.b / self.c

    def penalties(self) -> np.ndarray:
        """L2 penalty ``sigma^2 / lambda_k`` of each component's factors (float64, (k,))."""
        return self.sigma2 / self.lam

    def update(self, w2: np.ndarray, h2: np.ndarray, err2: float) -> None:
        """New ``lambda_k`` from the squared norms of the factors, ``sigma^2`` from the squared residual."""
        self.lam = (0.5 * w2 + 0.5 * h2 + self.b) / self.c
        self.sigma2 = max(err2 / self.n_observed, np.finfo(np.float64).tiny)
        self.history.append(self.lam.copy())

    def settled(self, tol: float) -> bool:
        """Every ``lambda_k`` changed by at most ``tol`` (relative) over the last :data:`STOP_WINDOW` updates."""
        if len(self.history) <= STOP_WINDOW:
            return False
        return bool(np.max(np.abs(self.history[-1] - self.history[0]) / self.history[-1]) <= tol)

    def relevance(self) -> np.ndarray:
        """``lambda_k / (b / c) - 1`` (0: switched off)."""
        return self.lam / self.bound - 1.0
