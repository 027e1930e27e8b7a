"""Page augmentation of sheet snippets: what scanned, photographed and printed pages do to engraved music.

Engraved training pages are perfectly sharp, black on white and straight; real pages are not. Each snippet of
a batch gets its own random draw of:

- rotation by up to 1.5 degrees and horizontal skew by up to 3 % (a page not quite straight on the scanner);
- line thickness: ink grown or thinned (heavier or lighter print, another staff-line weight);
- blur of up to 1 px sigma (focus, resampling);
- contrast and brightness changes, and for a fifth of the snippets a hard threshold (binarised scans);
- Gaussian noise of up to 0.05 (sensor noise, paper texture).

TensorFlow ops on (B, 80, 100) float batches in [0, 1] (white 1), stateless and seeded, so they run inside a
`tf.data` map (the training pipeline of `keras_asr.data`) and give the same result for the same seed.

    import tensorflow as tf
    from keras_asr import page_augment
    sheets = page_augment.augment_sheets(batch["sheet"], seed=tf.constant([1, 2]))
"""

import math

MAX_ROTATION_DEG = 1.5
MAX_SKEW = 0.03
MAX_BLUR_SIGMA = 1.0
CONTRAST_RANGE = (0.7, 1.3)
MAX_BRIGHTNESS = 0.05
THRESHOLD = 0.75  # high: a binarised scan keeps the thin, anti-aliased staff lines
THRESHOLD_FRACTION = 0.2
MAX_NOISE = 0.05


def augment_sheets(sheets, seed, strength=1.0):
    """Randomly degrades a batch of sheet snippets.

    Args:
        sheets: float (B, H, W) in [0, 1], white 1.
        seed: int32/int64 tensor of shape (2,) (a stateless seed).
        strength: scales every range (0: unchanged).

    Returns:
        float32 (B, H, W) in [0, 1].
    """
    import tensorflow as tf

    x = tf.cast(sheets, tf.float32)[..., None]  # (B, H, W, 1)
    b = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 8)

    def uniform(i, lo=-1.0, hi=1.0):
        return tf.random.stateless_uniform((b,), seeds[i], lo, hi)

    x = _affine(x, uniform(0) * strength * math.radians(MAX_ROTATION_DEG), uniform(1) * strength * MAX_SKEW)
    # Line thickness: a 3x3 min filter grows the ink by a pixel, a max filter thins it.
    grown = -tf.nn.max_pool2d(-x, 3, 1, "SAME")
    thinned = tf.nn.max_pool2d(x, 3, 1, "SAME")
    choice = uniform(2, 0.0, 1.0)[:, None, None, None]
    # Thinning only part way: staff lines are about a pixel wide and would vanish.
    grow, thin = strength * 0.4, strength * 0.25
    x = tf.where(choice < 0.25, (1 - grow) * x + grow * grown,
                 tf.where(choice > 0.75, (1 - thin) * x + thin * thinned, x))
    x = _blur(x, uniform(3, 0.0, 1.0) * strength * MAX_BLUR_SIGMA)
    lo, hi = CONTRAST_RANGE
    contrast = 1 + (uniform(4, lo, hi) - 1) * strength
    x = (x - 0.5) * contrast[:, None, None, None] + 0.5 + (uniform(5) * strength * MAX_BRIGHTNESS)[:, None, None, None]
    binarise = uniform(6, 0.0, 1.0) < THRESHOLD_FRACTION * strength
    x = tf.where(binarise[:, None, None, None], tf.cast(x > THRESHOLD, tf.float32), x)
    noise = tf.random.stateless_normal(tf.shape(x), seeds[7]) * (
        tf.random.stateless_uniform((b, 1, 1, 1), seeds[6], 0, MAX_NOISE * strength))
    return tf.clip_by_value(x + noise, 0.0, 1.0)[..., 0]


def augment_pairs(batch, seed, strength=1.0):
    """`augment_sheets` on the "sheet" of a pair batch dict; the spectrogram is left as it is."""
    return {**batch, "sheet": augment_sheets(batch["sheet"], seed, strength)}


def _affine(x, angle, skew):
    """Rotates each image by `angle` radians and skews it by `skew` about its centre, white outside."""
    import tensorflow as tf

    h, w = tf.cast(tf.shape(x)[1], tf.float32), tf.cast(tf.shape(x)[2], tf.float32)
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output (col, row) -> input: [a0 a1 a2; b0 b1 b2] about the centre (cx, cy).
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a0, a1 = cos, -sin + skew
    b0, b1 = sin, cos
    a2 = cx - a0 * cx - a1 * cy
    b2 = cy - b0 * cx - b1 * cy
    zeros = tf.zeros_like(angle)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=tf.shape(x)[1:3], fill_value=1.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")


def _blur(x, sigma):
    """Gaussian blur with a per-image sigma (a 5x5 kernel; sigma 0 leaves the image as it is)."""
    import tensorflow as tf

    taps = tf.range(-2, 3, dtype=tf.float32)
    s = tf.maximum(sigma, 1e-3)[:, None]
    k = tf.exp(-0.5 * (taps[None, :] / s) ** 2)
    k = k / tf.reduce_sum(k, axis=1, keepdims=True)  # (B, 5)
    padded = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], constant_values=1.0)
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    rows = sum(k[:, i, None, None, None] * padded[:, i:i + h, :, :] for i in range(5))
    return sum(k[:, j, None, None, None] * rows[:, :, j:j + w, :] for j in range(5))
