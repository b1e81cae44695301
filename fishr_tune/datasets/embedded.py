"""The embedded pool: scikit-learn's bundled handwritten digits (no download, no data dir).

``sklearn.datasets.load_digits`` ships 1,797 real 8x8 digits with integer pixels 0..16. The
embedded ColoredDigits / RotatedDigits apply DomainBed's ColoredMNIST / RotatedMNIST rules to
this pool (see ``tensors.build_tensor_envs``), which makes them fast defaults for tests and demos.
"""

from __future__ import annotations

import numpy as np

from fishr_tune.datasets.tensors import TensorPool

DIGITS_MAX_VALUE = 16


def load_digits_pool() -> TensorPool:
    """Load the 1,797 digits as uint8 (N, 8, 8) images 0..16 and int64 labels 0..9."""
    # Imported here: scikit-learn is only needed by the embedded datasets.
    from sklearn.datasets import load_digits

    digits = load_digits()
    # The bundled pixels are whole numbers stored as floats; uint8 keeps the pool small.
    images = np.rint(digits.images).astype(np.uint8)
    return TensorPool(images=images, labels=digits.target.astype(np.int64),
                      max_value=DIGITS_MAX_VALUE)
