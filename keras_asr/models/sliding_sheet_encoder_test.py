"""Tests for the sliding sheet encoder: equal to the per-snippet encoder on one window, independent of its
tiling, and close to the per-snippet embeddings on a real engraved strip."""

import numpy as np
import pytest

from keras_asr import sheet
from keras_asr import windows
from keras_asr.models import build_model
from keras_asr.models.sliding_sheet_encoder import SlidingSheetEncoder
from keras_asr.retrieval_test import SHIPPED_MODEL
from keras_asr.retrieval_test import library  # noqa: F401 (the session fixture of engraved scores)
from keras_asr.saving import load_model


@pytest.fixture(scope="module")
def strip(library):  # noqa: F811
    """The unrolled strip of a chorale excerpt engraved by verovio (the retrieval tests' MusicXML file)."""
    return sheet.unroll(sheet.load_pages(library[0]["bwv153-1"])).strip


@pytest.mark.parametrize("head", ["dense", "gap"])
def test_on_one_window_it_is_the_sheet_encoder(head, strip):
    model = build_model(context="SC", head=head)
    sliding = SlidingSheetEncoder(model)
    assert (sliding.stride, sliding.margin) == (32, 64)  # four 2x2 poolings of the halved strip; reach 60 px
    assert strip.shape[1] > 1000
    snippets = windows.snippets(strip, [200, 550, 900])
    expected = np.asarray(model.sheet_encoder.predict_on_batch(snippets))
    got = np.asarray(sliding.model.predict_on_batch(snippets[..., None]))[:, 0]
    np.testing.assert_allclose(got, expected, atol=2e-5)


def test_the_tiling_does_not_change_the_embeddings(strip):
    model = build_model(context="SC")
    x = sheet.snippet_centres(strip.shape[1], 16)
    small = SlidingSheetEncoder(model, outputs_per_tile=3, batch_size=2)(strip, x)
    large = SlidingSheetEncoder(model, outputs_per_tile=56)(strip, x)
    assert small.shape == (len(x), 32)
    np.testing.assert_allclose(small, large, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(large, axis=1), 1, atol=1e-5)


def test_it_is_close_to_the_snippet_by_snippet_embeddings_and_cheaper_on_a_dense_grid(strip):
    # Trunk borders see the neighbouring music instead of zero padding; with a trained model (the shipped
    # one) the embeddings of a real strip stay close and nearly every snippet remains its own nearest
    # neighbour among the piece's snippets.
    model = load_model(SHIPPED_MODEL)
    sliding = SlidingSheetEncoder(model)
    x = sheet.snippet_centres(strip.shape[1], 16)
    got = sliding(strip, x)
    expected = np.asarray(model.sheet_encoder.predict_on_batch(windows.snippets(strip, x)))
    cosine = (got * expected).sum(axis=1)
    assert cosine.mean() > 0.95, cosine.mean()
    assert np.mean((got @ expected.T).argmax(axis=1) == np.arange(len(x))) > 0.9
    # At 16 px one pass per residue (2) beats a window each; at 25 px the 32 residues do not.
    assert sliding.cost(x) < 0.5 * len(x)
    x25 = sheet.snippet_centres(strip.shape[1], 25)
    assert sliding.cost(x25) > len(x25)


def test_the_application_uses_it_for_bl2_only():
    assert SlidingSheetEncoder.supports(build_model(context="SC", head="dense"))
    assert not SlidingSheetEncoder.supports(build_model(context="SC", head="gap"))
    assert not SlidingSheetEncoder.supports(object())
    with pytest.raises(ValueError, match="SheetEncoder"):
        SlidingSheetEncoder(object())
