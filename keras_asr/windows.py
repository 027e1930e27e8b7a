"""The one definition of "the excerpt at onset frame o" and "the snippet at strip column x".

Training (`data.PairPool`), evaluation, indexing (`library.add_score`, `recordings.index_recordings`) and
querying (`identification.identify`) all cut their windows here, in NumPy or with the TensorFlow twins that the
`tf.data` pipeline runs (tested equal in `windows_test.py`):

- excerpt: spectrogram frames `o - C // 2 .. o - C // 2 + C - 1` (C = the context), zeros past the ends;
  optionally as if played `rate` times as fast: frames `o + (j - C // 2) * rate`, linearly interpolated
  (the training-time tempo augmentation; rate 1 takes the frames exactly);
- snippet: a `geometry.SNIPPET_WINDOW` (160 x 200) window of the strip, rows centred on the strip (plus a
  vertical shift) and columns `round(x) - 100 .. round(x) + 99`, optionally scaled about its centre, white
  past the strip, halved to 80 x 100 by 2 x 2 block means. At scale 1 and an integer shift it takes the
  strip's pixels exactly; otherwise it samples them bilinearly (the paper's training augmentation).

Example:

```python
spec_windows = windows.excerpts(spectrogram, onset_frames, 42)      # (k, 92, 42)
sheet_windows = windows.snippets(strip, notehead_x)                 # (k, 80, 100), white = 1
```
"""

import numpy as np

from keras_asr.geometry import SNIPPET_WINDOW
from keras_asr.geometry import STRIP_HEIGHT


def excerpt_frames(onsets, context):
    """(k, C) spectrogram frames of the excerpts centred on `onsets` (may fall outside the spectrogram)."""
    return np.atleast_1d(np.asarray(onsets, np.int64))[:, None] - context // 2 + np.arange(context)


def excerpt_positions(onsets, context, rate, arange=np.arange):
    """(k, C) fractional frame positions of excerpts as if played `rate` (k,) times as fast: the onset stays at
    column C // 2 and each column steps `rate` frames. `arange` is NumPy's or TensorFlow's (float64)."""
    return onsets[:, None] + (arange(context) - context // 2)[None, :] * rate[:, None]


def excerpts(spectrogram, onsets, context, rate=None):
    """Spectrogram excerpts `spec[:, o - C//2 : o - C//2 + C]`, zero-padded past the ends.

    Args:
        spectrogram: (bins, N) spectrogram.
        onsets: (k,) centre frames.
        context: number of frames C.
        rate: None, or (k,) tempo factors: each excerpt as if the music were played `rate` times as fast
            (2: twice the music in the same frames), frames linearly interpolated; 1 takes them exactly.

    Returns:
        float32 (k, bins, C).
    """
    spec = np.asarray(spectrogram, np.float32)

    def read(frames):
        ok = (frames >= 0) & (frames < spec.shape[1])
        out = spec[:, np.clip(frames, 0, spec.shape[1] - 1)].transpose(1, 0, 2)
        return np.where(ok[:, None, :], out, 0).astype(np.float32)

    if rate is None:
        return read(excerpt_frames(onsets, context))
    onsets = np.atleast_1d(np.asarray(onsets, np.float64))
    position = excerpt_positions(onsets, context, np.asarray(rate, np.float64).reshape(len(onsets)))
    first = np.floor(position)
    w = (position - first).astype(np.float32)[:, None, :]
    first = first.astype(np.int64)
    return ((1 - w) * read(first) + w * read(first + 1)).astype(np.float32)


def snippet_grid(x, shift, scale, arange=np.arange, round_half_even=np.round):
    """Source rows (k, 160) and columns (k, 200) of the snippet windows, scaled about their centres.

    At scale 1 and integer shift the window is rows 20 + shift .. 179 + shift and columns
    round(x) - 100 .. round(x) + 99: exact pixels. `arange` and `round_half_even` are NumPy's or TensorFlow's.
    """
    rows, cols = SNIPPET_WINDOW
    r = ((STRIP_HEIGHT - 1) / 2 + shift)[:, None] + (arange(rows) - (rows - 1) / 2) / scale[:, None]
    c = (round_half_even(x) - 0.5)[:, None] + (arange(cols) - (cols - 1) / 2) / scale[:, None]
    return r, c


def snippets(strip, x, shift=None, scale=None, batch_size=256):
    """Sheet snippets centred on strip columns `x`.

    Args:
        strip: (STRIP_HEIGHT, width) unrolled score: uint8 with white = 255, or float with white = 1.
        x: (k,) strip columns (notehead centres, or an index's snippet centres).
        shift: (k,) vertical shifts in pixels (default 0).
        scale: (k,) scale factors about the window centre (default 1).
        batch_size: windows cut at a time (bounds the full-resolution memory).

    Returns:
        float32 (k, 80, 100) in [0, 1], white = 1.
    """
    strip = np.asarray(strip)
    white = 255.0 if strip.dtype == np.uint8 else 1.0
    x = np.atleast_1d(np.asarray(x, np.float64))
    shift = np.zeros_like(x) if shift is None else np.asarray(shift, np.float64)
    scale = np.ones_like(x) if scale is None else np.asarray(scale, np.float64)
    rows, cols = SNIPPET_WINDOW
    out = np.empty((len(x), rows // 2, cols // 2), np.float32)
    for first in range(0, len(x), batch_size):
        part = slice(first, first + batch_size)
        r, c = snippet_grid(x[part], shift[part], scale[part])
        out[part] = halve(bilinear(strip, r, c, white)) / white
    return out


def bilinear(strip, r, c, white):
    """Samples a strip at rows r (k, R) x columns c (k, C), `white` outside; returns float32 (k, R, C).

    The rows and columns of each window are evenly spaced (`snippet_grid`): the window is the strip zoomed
    and shifted along both axes, which scipy's separable zoom-shift (`affine_transform` with a diagonal
    matrix) samples about twice as fast as `map_coordinates`. Mode "grid-constant" blends the border pixels
    with the white past them, as the TensorFlow twin does (scipy's "constant" would make everything past the
    last pixel white). At integer coordinates (scale 1 and an integer shift: every index and query) the
    pixels are taken by indexing, 2-4x faster than interpolating."""
    from scipy import ndimage

    if np.array_equal(r, np.floor(r)) and np.array_equal(c, np.floor(c)):
        return _pixels(strip, r.astype(np.int64), c.astype(np.int64), white)
    out = np.empty((len(r), r.shape[1], c.shape[1]), np.float32)
    for window, rows, cols in zip(out, r, c):
        step = (rows[-1] - rows[0]) / (len(rows) - 1), (cols[-1] - cols[0]) / (len(cols) - 1)
        ndimage.affine_transform(strip, step, offset=(rows[0], cols[0]), output_shape=window.shape,
                                 output=window, order=1, mode="grid-constant", cval=white)
    return out


def _pixels(strip, rows, cols, white):
    """The strip's pixels at integer rows (k, R) x columns (k, C), `white` outside, as float32 (k, R, C)."""
    height, width = strip.shape
    inside = ((rows >= 0) & (rows < height))[:, :, None] & ((cols >= 0) & (cols < width))[:, None, :]
    pixels = strip[np.clip(rows, 0, height - 1)[:, :, None], np.clip(cols, 0, width - 1)[:, None, :]]
    return np.where(inside, pixels, white).astype(np.float32)


def halve(window):
    """(k, 2R, 2C) -> (k, R, C) by 2 x 2 block means."""
    from skimage.transform import downscale_local_mean

    return downscale_local_mean(window, (1, 2, 2))


def sliding_tiles(strip, x, stride, margin, outputs_per_tile=56):
    """Tiles of the halved strip from which a fully convolutional sheet encoder embeds the snippets at `x`.

    A snippet's window (`snippet_grid` at scale 1, no shift) starts at column round(x) - 100. An encoder whose
    outputs step `stride` strip columns sees, in one pass over a strip, every window that starts a multiple of
    `stride` from its first; snippets whose starts differ by other amounts need passes over the strip shifted
    by that residue. Each pass is cut into tiles of `outputs_per_tile` windows plus `margin` columns of context
    on either side (at least the encoder's reach beyond a window), so that every output sees what a pass over
    the whole, white-extended strip would: the result does not depend on the tiling or the strip's length.
    Like `snippets`, the strip is white past its ends.

    Args:
        strip: (STRIP_HEIGHT, width) unrolled score, uint8 (white 255) or float (white 1).
        x: (k,) snippet centres (strip columns, rounded half to even as `snippets` does).
        stride: strip columns between the encoder's outputs (even).
        margin: strip columns of context each side of a tile's windows (a multiple of `stride`).
        outputs_per_tile: windows per tile.

    Returns:
        (tiles, slots): float32 tiles (t, 80, w) in [0, 1], white = 1, and (k,) int64 slots: snippet i is
        output `slots[i] % outputs_per_tile` of tile `slots[i] // outputs_per_tile` (counting from the
        first window after the margin).
    """
    strip = np.asarray(strip)
    white = 255.0 if strip.dtype == np.uint8 else 1.0
    rows = SNIPPET_WINDOW[0]
    if stride % 2 or margin % stride:
        raise ValueError(f"stride must be even and margin a multiple of it; got {stride}, {margin}.")
    top = (STRIP_HEIGHT - rows) // 2
    span = sliding_tile_span(stride, margin, outputs_per_tile)
    tiles, slots = [], np.empty(len(np.atleast_1d(x)), np.int64)
    for members, first, position, count in sliding_passes(x, stride, outputs_per_tile):
        left = first - margin
        width = (count - 1) * outputs_per_tile * stride + span
        columns = np.arange(left, left + width)
        inside = (columns >= 0) & (columns < strip.shape[1])
        band = np.full((rows, width), white, np.float32)
        band[:, inside] = strip[top:top + rows, columns[inside]]
        band = halve(band[None])[0] / white
        step = outputs_per_tile * stride // 2
        slots[members] = len(tiles) * outputs_per_tile + position
        tiles.extend(band[:, t * step:t * step + span // 2] for t in range(count))
    return np.stack(tiles) if tiles else np.zeros((0, rows // 2, 0), np.float32), slots


def sliding_passes(x, stride, outputs_per_tile):
    """The passes of `sliding_tiles` over a strip for snippets at `x`, one per residue of their window starts
    modulo `stride`: (members, first window start, each member's output number in the pass, tiles) each."""
    starts = np.round(np.atleast_1d(np.asarray(x, np.float64))).astype(np.int64) - SNIPPET_WINDOW[1] // 2
    for residue in np.unique(starts % stride):
        members = np.flatnonzero(starts % stride == residue)
        first = starts[members].min()
        position = (starts[members] - first) // stride
        yield members, first, position, -(-(position.max() + 1) // outputs_per_tile)


def sliding_tile_span(stride, margin, outputs_per_tile):
    """Strip columns of one tile of `sliding_tiles`: its windows and the margin either side."""
    return (outputs_per_tile - 1) * stride + SNIPPET_WINDOW[1] + 2 * margin


# ---------------------------------------------------------------------------------------------------------------
# TensorFlow twins, for `tf.data` (the pixel and frame reads are the caller's: they index its flat tables)


def tf_excerpts(onsets, context, read_frames, rate=None):
    """The TensorFlow twin of `excerpts`: `read_frames(frames)` takes (k, C) int64 frame numbers and returns
    their spectrogram columns (k, C, bins), zeros for frames outside the spectrogram; `rate` as there."""
    import tensorflow as tf

    if rate is None:
        frames = tf.cast(onsets, tf.int64)[:, None] - context // 2 + tf.range(context, dtype=tf.int64)
        return tf.transpose(read_frames(frames), (0, 2, 1))
    position = excerpt_positions(tf.cast(onsets, tf.float64), context, tf.cast(rate, tf.float64),
                                 arange=lambda n: tf.range(n, dtype=tf.float64))
    first = tf.floor(position)
    w = tf.cast(position - first, tf.float32)[:, :, None]
    first = tf.cast(first, tf.int64)
    return tf.transpose((1 - w) * read_frames(first) + w * read_frames(first + 1), (0, 2, 1))


def tf_snippets(x, shift, scale, read_pixels):
    """The TensorFlow twin of `snippets`: `read_pixels(rows (k, R), cols (k, C))` returns the strip's pixels
    (k, R, C) as float32 in 0..255, 255 outside the strip."""
    import tensorflow as tf

    r, c = snippet_grid(tf.cast(x, tf.float64), tf.cast(shift, tf.float64), tf.cast(scale, tf.float64),
                        arange=lambda n: tf.range(n, dtype=tf.float64), round_half_even=tf.round)
    r0, c0 = tf.floor(r), tf.floor(c)
    wr, wc = tf.cast(r - r0, tf.float32)[:, :, None], tf.cast(c - c0, tf.float32)[:, None, :]
    r0, c0 = tf.cast(r0, tf.int64), tf.cast(c0, tf.int64)
    window = ((1 - wr) * ((1 - wc) * read_pixels(r0, c0) + wc * read_pixels(r0, c0 + 1))
              + wr * ((1 - wc) * read_pixels(r0 + 1, c0) + wc * read_pixels(r0 + 1, c0 + 1)))
    rows, cols = SNIPPET_WINDOW
    k = tf.shape(window)[0]
    return tf.reduce_mean(tf.reshape(window, (k, rows // 2, 2, cols // 2, 2)), axis=(2, 4)) / 255.0
