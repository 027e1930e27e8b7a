"""Small helpers for the tests: gradients on whichever Keras backend is active."""

import keras
import numpy as np


def gradient(fn, x):
    """Gradient of the scalar `fn(x)` with respect to the NumPy array `x`, as a NumPy array."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = fn(x)
        return tape.gradient(value, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(fn)(x))
    if backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        fn(x).backward()
        return x.grad.numpy()
    raise NotImplementedError(f"No gradient helper for the {backend} backend.")


def fixture_root():
    """The committed real tiny corpus in MSMD layout (3 Bach chorales, engraved and synthesized)."""
    import os

    return os.path.join(os.path.dirname(os.path.dirname(__file__)), "tfds_msmd", "msmd", "dummy_data")


def real_pairs(num, context, seed=0):
    """`num` real (excerpt, snippet) pairs from the committed fixture, as the model's input dict.

    Pairs are drawn with replacement and with the training augmentation, so `num` may exceed
    the fixture's pair count (about 150) and repeated pairs still differ.
    """
    from keras_asr import sources
    from keras_asr.data import PairPool

    pool = PairPool(sources.read_corpus(fixture_root()))
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(pool), num)
    return pool.batch(indices, context, augment=pool.augmentation(num, rng))
