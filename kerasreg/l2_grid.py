"""The L2 strengths `--l2 auto` walks, and scikit-learn's C for each.

Below everything that trains: config.py names the grid in `--help`, l2_search.py
walks it, and neither has to import the other.
"""

from __future__ import annotations

import numpy as np

# Half-decades from 10 (a near-constant model) down to 1e-5 (C ~ 40 on digits).
# Measured best points on validation: cat vs rest 1, the CIFAR sample 0.3 (0.1 on
# other seeds' splits), MNIST 8k 3e-3, digits 1e-5 to 3e-4.
L2_GRID = tuple(float(f"{v:.3g}") for v in np.logspace(1, -5, 13))
RISES_TO_STOP = 2  # the path stops once the validation loss has risen at this many points in a row


def c_of(l2: float, n: int) -> float:
    """scikit-learn's C for kerasreg's l2 on n examples (C = 1 / (2 l2 n)); inf for l2 = 0."""
    return float("inf") if l2 == 0 else 1.0 / (2.0 * l2 * n)
