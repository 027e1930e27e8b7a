"""Tests for the pair pipeline, on the real tiny corpus in tfds_msmd/msmd/dummy_data (Bach chorale openings)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_asr import data
from keras_asr import sheet
from keras_asr import windows
from tfds_msmd import layout

DUMMY_DATA = os.path.join(os.path.dirname(__file__), "..", "tfds_msmd", "msmd", "dummy_data")


@pytest.fixture(scope="module")
def records():
    pieces = sorted(p for p in os.listdir(DUMMY_DATA) if os.path.isdir(os.path.join(DUMMY_DATA, p)))
    return [r for p in pieces for r in layout.read_piece(os.path.join(DUMMY_DATA, p))]


@pytest.fixture(scope="module")
def pool(records):
    return data.PairPool(records)


@pytest.mark.single_backend
@pytest.mark.parametrize("context", [42, 43, 168])
def test_excerpt_is_centred_on_the_onset(pool, context):
    for i in range(0, len(pool), 7):
        spec = pool.specs[pool.pair_example[i]]
        o = int(pool.pair_onset[i])
        excerpt = pool.batch([i], context)["spectrogram"][0]
        assert excerpt.shape == (92, context)
        padded = np.pad(spec, ((0, 0), (context, context)))  # zeros = silence past the ends
        np.testing.assert_array_equal(excerpt, padded[:, context + o - context // 2:][:, :context])
        np.testing.assert_array_equal(excerpt[:, context // 2], spec[:, o])  # the onset frame sits mid-window


@pytest.mark.single_backend
def test_snippet_is_centred_on_the_notehead(pool, records):
    # The sheet module cuts the same window independently (float strip, 2x2 block means).
    idx = np.arange(len(pool))
    snippets = pool.batch(idx, 42)["sheet"]
    assert snippets.shape == (len(pool), 80, 100) and snippets.min() >= 0 and snippets.max() <= 1
    for e, s in enumerate(pool.example_strip):
        mine = idx[pool.pair_example == e]
        strip = pool.strips[s].astype(np.float32) / 255
        np.testing.assert_allclose(snippets[mine], windows.snippets(strip, pool.pair_x[mine]), atol=1e-6)
    # Past the strip's ends the window is white.
    first = np.argmin(pool.pair_x)
    left_cols = 100 - int(np.round(pool.pair_x[first]))
    assert left_cols > 0 and np.all(snippets[first][:, : left_cols // 2] == 1.0)
    # The notehead is dark where the window is centred: the reader's strip x matches the image.
    score = layout.read_score(os.path.join(DUMMY_DATA, records[0].piece))
    dark = [score.strip[:, int(round(x)) - 1:int(round(x)) + 2].min() < 128 for x in score.strip_x]
    assert np.mean(dark) > 0.95


@pytest.mark.single_backend
def test_eval_set_is_fixed_and_ordered(records):
    a = data.PairPool(records)
    b = data.PairPool(records[::-1])  # input order does not matter
    np.testing.assert_array_equal(a.pair_onset, b.pair_onset)
    assert a.example_performance == sorted(a.example_performance)  # piece -> performance -> onset
    for e in range(len(a.example_performance)):
        assert np.all(np.diff(a.pair_onset[a.pair_example == e]) > 0)
    np.testing.assert_array_equal(data.eval_indices(100_000, 5), [0, 24999, 49999, 74999, 99999])
    np.testing.assert_array_equal(a.eval_indices(30), np.linspace(0, len(a) - 1, 30).astype(int))
    np.testing.assert_array_equal(a.eval_indices(), np.arange(len(a)))  # fewer pairs than n: all of them
    first = [next(iter(p.dataset(84, batch_size=16, n=30))) for p in (a, b)]
    for key in ("spectrogram", "sheet"):
        np.testing.assert_array_equal(first[0][key], first[1][key])
    # tf.data and NumPy give the same pairs.
    numpy_batch = a.batch(a.eval_indices(30)[:16], 84)
    for key in ("spectrogram", "sheet"):
        np.testing.assert_allclose(first[0][key].numpy(), numpy_batch[key], atol=1e-6)


@pytest.mark.single_backend
def test_augmentation_matches_numpy_and_stays_in_range(pool):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(pool), 40)
    shift, scale, jitter = pool.augmentation(40, rng)
    assert np.abs(shift).max() <= 5 and np.abs(jitter).max() <= 1 and 0.95 <= scale.min() <= scale.max() <= 1.05
    expected = pool.batch(idx, 42, (shift, scale, jitter))
    got = pool._tf_batch(tf.constant(idx), 42, tf.constant(shift, tf.float64), tf.constant(scale),
                         tf.constant(jitter))
    for key in ("spectrogram", "sheet"):
        np.testing.assert_allclose(got[key].numpy(), expected[key], atol=1e-5)
    # Jitter moves the excerpt by whole frames; shift and scale keep the notehead near the centre.
    plain = pool.batch(idx, 42)
    for k in range(40):
        np.testing.assert_array_equal(
            expected["spectrogram"][k][:, 1:-1],
            pool.batch([idx[k]], 44)["spectrogram"][0][:, 2 + jitter[k]: 42 + jitter[k]])
    assert np.mean(np.abs(expected["sheet"] - plain["sheet"])) < 0.15


@pytest.mark.single_backend
def test_training_stream_is_seeded(pool):
    take = [list(pool.dataset(42, batch_size=8, training=True, seed=3).take(2)) for _ in range(2)]
    np.testing.assert_array_equal(take[0][1]["sheet"], take[1][1]["sheet"])
    other = next(iter(pool.dataset(42, batch_size=8, training=True, seed=4)))
    assert not np.array_equal(other["sheet"], take[0][0]["sheet"])
    assert take[0][0]["spectrogram"].shape == (8, 92, 42) and take[0][0]["sheet"].shape == (8, 80, 100)


@pytest.mark.single_backend
def test_tempo_augmentation_changes_the_excerpts_only(pool):
    plain = next(iter(pool.dataset(42, batch_size=8, training=True, seed=3)))
    pool.tempo_augment = (0.5, 2.0)
    try:
        tempo = next(iter(pool.dataset(42, batch_size=8, training=True, seed=3)))
        numpy_tempo = next(pool.batches(42, batch_size=8, training=True, seed=3))
        factors = pool.tempo_factors(1000, np.random.default_rng(0))
    finally:
        pool.tempo_augment = None
    numpy_plain = next(pool.batches(42, batch_size=8, training=True, seed=3))
    # The same pairs and snippets (the factors have their own seed); other excerpts.
    np.testing.assert_array_equal(plain["sheet"], tempo["sheet"])
    np.testing.assert_array_equal(numpy_plain["sheet"], numpy_tempo["sheet"])
    assert np.abs(plain["spectrogram"].numpy() - tempo["spectrogram"].numpy()).mean() > 1e-3
    assert np.abs(numpy_plain["spectrogram"] - numpy_tempo["spectrogram"]).mean() > 1e-3
    # Log-uniform over the range: as many pairs slower as faster.
    assert pool.tempo_factors(3, np.random.default_rng(0)) is None
    assert 0.5 <= factors.min() < 0.55 and 1.8 < factors.max() <= 2.0 and abs(np.log(factors).mean()) < 0.1


class TwoInputModel(keras.Model):
    """The retrieval model's input signature, with a trivial loss: enough to show `fit` consumes the data."""

    def __init__(self):
        super().__init__()
        self.audio = keras.layers.Dense(4)
        self.sheet = keras.layers.Dense(4)

    def call(self, inputs):
        a = self.audio(keras.ops.reshape(inputs["spectrogram"], (-1, 92 * 42)))
        s = self.sheet(keras.ops.reshape(inputs["sheet"], (-1, 80 * 100)))
        return a - s

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return keras.ops.mean(keras.ops.square(y_pred))


def test_model_fit_consumes_pairs(pool):
    model = TwoInputModel()
    model.compile(optimizer="adam")
    history = model.fit(pool.dataset(42, batch_size=16, training=True, seed=0), steps_per_epoch=3, epochs=2,
                        validation_data=pool.dataset(42, batch_size=16, n=32), verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"]).all() and np.isfinite(history.history["val_loss"]).all()
    # The NumPy path feeds the same model without tf.data.
    batch = next(pool.batches(42, batch_size=16))
    assert model.predict_on_batch(batch).shape == (16, 4)


@pytest.mark.single_backend
def test_a_pool_of_some_performances_only(records):
    kept = list(data.filter_performances(records, "_FluidR3_GM$"))
    assert kept and len(kept) < len(records)
    pool = data.PairPool(kept)
    assert all(p.endswith("_FluidR3_GM") for p in pool.example_performance)
    assert list(data.filter_performances(records, "no such sound")) == []
