import numpy as np
import pytest
import tensorflow as tf

from keras_asr import page_augment

pytestmark = pytest.mark.single_backend


@pytest.fixture(scope="module")
def snippets():
    """Real snippets: the opening of BWV 846 engraved with verovio, cut around four noteheads."""
    from tfds_msmd.corpus import engrave, sources

    engraving = engrave.engrave(sources.load_score(sources.Source("x", "bach/bwv846.mxl", 2)))
    page = engraving.pages[0].astype(np.float32) / 255
    out = []
    for h in engraving.noteheads[8:40:8]:
        y, x = (int(v) for v in h.centre)
        out.append(page[y - 40:y + 40, x - 50:x + 50])
    return np.stack(out)


def test_augmentation_changes_every_snippet_but_keeps_the_music(snippets):
    out = page_augment.augment_sheets(tf.constant(snippets), tf.constant([1, 2])).numpy()
    assert out.shape == snippets.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    for before, after in zip(snippets, out):
        assert np.abs(after - before).mean() > 0.005
        # Ink stays where it was, give or take the slight rotation: dark pixels overlap.
        ink_before, ink_after = before < 0.5, after < 0.5
        assert (ink_before & ink_after).sum() > 0.3 * ink_before.sum()


def test_same_seed_same_result_and_zero_strength_is_identity(snippets):
    a = page_augment.augment_sheets(tf.constant(snippets), tf.constant([5, 6])).numpy()
    b = page_augment.augment_sheets(tf.constant(snippets), tf.constant([5, 6])).numpy()
    c = page_augment.augment_sheets(tf.constant(snippets), tf.constant([7, 8])).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 0.005
    same = page_augment.augment_sheets(tf.constant(snippets), tf.constant([5, 6]), strength=0.0).numpy()
    np.testing.assert_allclose(same, snippets, atol=1e-4)


def test_augment_pairs_leaves_the_audio_alone(snippets):
    spec = np.ones((len(snippets), 92, 42), np.float32)
    out = page_augment.augment_pairs({"sheet": tf.constant(snippets), "spectrogram": tf.constant(spec)},
                                     tf.constant([1, 1]))
    np.testing.assert_array_equal(out["spectrogram"].numpy(), spec)


def test_pair_pool_applies_it_to_training_batches_only_when_asked(tmp_path):
    from keras_asr import data
    from tfds_msmd import layout
    from tfds_msmd.corpus import testing

    testing.make_tiny_corpus(tmp_path, n_pieces=1, max_measures=3, renders=testing.TINY_RENDERS[:1])
    records = layout.read_piece(str(tmp_path / "bach__bwv269__chorale"))
    examples = [dict(piece=r.piece, performance=r.performance, strip=r.strip, spectrogram=r.spectrogram,
                     onset_frames=r.onset_frames, notehead_x=r.notehead_x) for r in records]
    plain, degraded = data.PairPool(examples), data.PairPool(examples)
    degraded.page_augment = 1.0
    a, b = (next(iter(p.dataset(42, batch_size=8, training=True, seed=1))) for p in (plain, degraded))
    np.testing.assert_array_equal(a["spectrogram"].numpy(), b["spectrogram"].numpy())
    assert np.abs(a["sheet"].numpy() - b["sheet"].numpy()).mean() > 0.005
