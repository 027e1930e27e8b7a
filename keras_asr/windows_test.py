"""Tests for the one cutter: exact windows at scale 1, the padding past the ends, and the TensorFlow twins."""

import numpy as np
import pytest
import tensorflow as tf

from keras_asr import windows
from keras_asr.testing import fixture_root
from tfds_msmd import layout

pytestmark = pytest.mark.single_backend


@pytest.fixture(scope="module")
def record():
    return layout.read_piece(f"{fixture_root()}/bach__bwv269__chorale")[0]


def test_a_snippet_at_scale_one_is_the_strip_itself_halved(record):
    x = record.strip.shape[1] / 2 + 0.3
    (snippet,) = windows.snippets(record.strip, [x])
    c = int(np.round(x))
    padded = np.pad(record.strip, ((0, 0), (200, 200)), constant_values=255)  # white past the strip
    window = padded[20:180, c + 100:c + 300].astype(np.float32)
    np.testing.assert_allclose(snippet, window.reshape(80, 2, 100, 2).mean(axis=(1, 3)) / 255, atol=1e-6)
    # The same strip as float (the application's pages) gives the same snippet.
    np.testing.assert_allclose(windows.snippets(record.strip / 255.0, [x])[0], snippet, atol=1e-6)
    # Shifted by 4 rows, the window moves down 4 rows; past the strip's ends it is white.
    (shifted,) = windows.snippets(record.strip, [x], shift=[4])
    np.testing.assert_allclose(shifted, windows.snippets(record.strip[4:], [x])[0], atol=1e-6)
    (start,) = windows.snippets(record.strip, [0])
    assert np.all(start[:, :50] == 1.0)


def test_an_excerpt_is_centred_on_its_frame_and_zero_past_the_ends(record):
    spec = record.spectrogram
    onsets = [spec.shape[1] // 2, 0, spec.shape[1] - 1]
    padded = np.pad(spec, ((0, 0), (42, 42)))  # zeros past the ends
    for excerpt, o in zip(windows.excerpts(spec, onsets, 42), onsets):
        np.testing.assert_array_equal(excerpt, padded[:, o - 21 + 42:o + 21 + 42])
    assert np.all(windows.excerpts(spec, [0], 42)[0][:, :21] == 0)


def test_the_tensorflow_twins_cut_what_numpy_cuts(record):
    rng = np.random.default_rng(0)
    k = 12
    x = rng.choice(record.notehead_x, k)
    shift, scale = rng.integers(-5, 6, k).astype(float), rng.uniform(0.95, 1.05, k)
    onsets = rng.choice(record.onset_frames, k) + rng.integers(-1, 2, k)
    strip = tf.constant(record.strip.astype(np.float32))
    height, width = record.strip.shape

    def read_pixels(rr, cc):
        ok = ((rr >= 0) & (rr < height))[:, :, None] & ((cc >= 0) & (cc < width))[:, None, :]
        r = tf.clip_by_value(rr, 0, height - 1)[:, :, None] + 0 * cc[:, None, :]
        c = tf.clip_by_value(cc, 0, width - 1)[:, None, :] + 0 * rr[:, :, None]
        return tf.where(ok, tf.gather_nd(strip, tf.stack([r, c], -1)), 255.0)

    spec = tf.constant(record.spectrogram.T)  # (N, bins)

    def read_frames(frames):
        ok = (frames >= 0) & (frames < spec.shape[0])
        return tf.gather(spec, tf.clip_by_value(frames, 0, spec.shape[0] - 1)) * tf.cast(ok, tf.float32)[:, :, None]

    np.testing.assert_allclose(windows.tf_snippets(tf.constant(x), tf.constant(shift), tf.constant(scale), read_pixels),
                               windows.snippets(record.strip, x, shift, scale), atol=1e-5)
    np.testing.assert_allclose(windows.tf_excerpts(tf.constant(onsets), 42, read_frames),
                               windows.excerpts(record.spectrogram, onsets, 42), atol=1e-6)


def test_a_tempo_factor_samples_the_frames_it_says_and_the_twins_agree(record):
    spec = record.spectrogram
    onsets = np.array([spec.shape[1] // 2, 3, spec.shape[1] - 2])
    exact = windows.excerpts(spec, onsets, 42)
    # Factor 1 takes the frames exactly; factor 2 every second frame about the onset (twice the music).
    np.testing.assert_array_equal(windows.excerpts(spec, onsets, 42, rate=np.ones(3)), exact)
    twice = windows.excerpts(spec, onsets, 42, rate=np.full(3, 2.0))
    o = onsets[0]
    np.testing.assert_array_equal(twice[0], spec[:, o - 42:o + 42:2])
    # Factor 0.5 (half as fast): half the music; the onset's column (21) and every second one from it are
    # frames, the others halfway between neighbouring frames.
    half = windows.excerpts(spec, onsets, 42, rate=np.full(3, 0.5))
    np.testing.assert_array_equal(half[0][:, 1::2], spec[:, o - 10:o + 11])
    np.testing.assert_allclose(half[0][:, ::2], (spec[:, o - 11:o + 10] + spec[:, o - 10:o + 11]) / 2, atol=1e-6)
    assert np.all(twice[1][:, :19] == 0)  # zeros past the ends, as without a factor
    frames = tf.constant(spec.T)

    def read_frames(f):
        ok = (f >= 0) & (f < spec.shape[1])
        return tf.gather(frames, tf.clip_by_value(f, 0, spec.shape[1] - 1)) * tf.cast(ok, tf.float32)[:, :, None]

    rate = np.array([0.5, 0.77, 1.9])
    np.testing.assert_allclose(windows.tf_excerpts(tf.constant(onsets), 42, read_frames, tf.constant(rate)),
                               windows.excerpts(spec, onsets, 42, rate), atol=1e-5)


def test_an_excerpt_cut_at_factor_two_resembles_the_music_rendered_twice_as_fast():
    # The fixture renders each piece with MuseScore_General at tempo 1 and 2: cut from the tempo-1 render at
    # factor 2, every excerpt correlates with the real tempo-2 render's far better than the plain cut does.
    def correlation(a, b):
        a, b = (v.reshape(len(v), -1) - v.reshape(len(v), -1).mean(1, keepdims=True) for v in (a, b))
        return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))

    records = layout.read_piece(f"{fixture_root()}/bach__bwv347__chorale")
    one, two = (next(r for r in records if r.performance.endswith(f"tempo-{t}_MuseScore_General"))
                for t in (1000, 2000))
    np.testing.assert_array_equal(one.notehead_x, two.notehead_x)  # the same notes in the same order
    n = len(one.onset_frames)
    fast = windows.excerpts(two.spectrogram, two.onset_frames, 42)
    plain = correlation(windows.excerpts(one.spectrogram, one.onset_frames, 42), fast)
    cut = correlation(windows.excerpts(one.spectrogram, one.onset_frames, 42, rate=np.full(n, 2.0)), fast)
    assert n >= 5 and cut.min() > 0.85 and plain.max() < 0.8, (plain, cut)


def test_sliding_tiles_hold_every_snippet_window_at_its_slot(record):
    # Centres every 16 px (two residues of a 32 px stride) and a few off the grid, from before the strip's
    # start to past its end: each window, read back from its tile, is the snippet `snippets` cuts.
    width = record.strip.shape[1]
    x = np.concatenate([np.arange(-40, width + 60, 16), [3, 101, 130]])  # distinct centres: one slot each
    stride, margin, per_tile = 32, 64, 5
    tiles, slots = windows.sliding_tiles(record.strip, x, stride, margin, per_tile)
    assert tiles.shape[1:] == (80, ((per_tile - 1) * stride + 200 + 2 * margin) // 2)
    assert len(set(slots.tolist())) == len(x)  # no two snippets share an output
    expected = windows.snippets(record.strip, x)
    for snippet, slot in zip(expected, slots):
        start = (margin + (slot % per_tile) * stride) // 2
        np.testing.assert_allclose(tiles[slot // per_tile][:, start:start + 100], snippet, atol=1e-6)
    # Four residues of the x's mod 32 beyond the grid ones: one pass each.
    assert len(tiles) >= len(np.unique(np.round(x) % stride))
    with pytest.raises(ValueError, match="multiple"):
        windows.sliding_tiles(record.strip, x, 32, 40)
