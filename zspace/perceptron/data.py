"""The 14 two-feature samples of the perceptron study and their targets.

K1/K2 follow the tables of the reference study (positions 7 and 10 hold 14 and 7;
the reference's code listing has typos there). Targets alternate 0.3 and 0.7: the
neuron should tell the "large K1" samples from the "large K2" ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

K1 = (200.0, 1.0, 160.0, 11.0, 220.0, 11.0, 120.0, 14.0, 195.0, 15.0, 130.0, 5.0, 185.0, 16.0)
K2 = (14.0, 107.0, 10.0, 193.0, 32.0, 178.0, 2.0, 210.0, 12.0, 134.0, 7.0, 167.0, 10.0, 229.0)
TARGETS = tuple(0.3 if i % 2 == 0 else 0.7 for i in range(len(K1)))


@dataclass(frozen=True)
class Samples:
    """Raw inputs ``K`` (n, 2) in the original (K1, K2) units and targets ``target`` (n,)."""

    K: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return int(self.K.shape[0])


def reference_samples() -> Samples:
    """The study's data set as fresh float64 arrays (callers may modify them)."""
    return Samples(K=np.column_stack((K1, K2)).astype(np.float64), target=np.array(TARGETS))
