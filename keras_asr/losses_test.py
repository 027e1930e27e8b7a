import keras
import numpy as np
from keras import ops

from keras_asr.losses import PairwiseRankingLoss


def hand_computed(x, y, margin):
    """The loss written out with loops, straight from its definition."""
    n = len(x)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    total = 0.0
    for i in range(n):
        for j in range(n):
            if i != j:
                total += max(0.0, margin - x[i] @ y[i] + x[i] @ y[j])
    return total / (n * (n - 1))


def test_matches_the_definition():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5)).astype("float32")
    y = (x + rng.normal(size=(7, 5))).astype("float32")
    for margin in (0.7, 0.2):
        value = float(ops.convert_to_numpy(PairwiseRankingLoss(margin=margin)(x, y)))
        np.testing.assert_allclose(value, hand_computed(x, y, margin), rtol=1e-5)


def test_well_separated_pairs_cost_nothing_and_swapped_pairs_cost_most():
    x = np.eye(4, 6, dtype="float32")
    loss = PairwiseRankingLoss()
    assert float(ops.convert_to_numpy(loss(x, x))) == 0.0  # 0.7 - 1 + 0 < 0
    swapped = x[[1, 0, 3, 2]]
    # s(x_i, y_i) = 0 and one negative with s = 1: (0.7 + 1) + 2 * 0.7 over 3 negatives.
    np.testing.assert_allclose(float(ops.convert_to_numpy(loss(x, swapped))), (1.7 + 1.4) / 3, rtol=1e-6)


def test_config_round_trip():
    loss = PairwiseRankingLoss(margin=0.5)
    clone = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(clone, PairwiseRankingLoss) and clone.margin == 0.5


def infonce_by_hand(x, y, temperature):
    """Symmetric InfoNCE written out: softmax cross-entropy of rows and of columns, target the diagonal."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    logits = (x @ y.T / temperature).astype(np.float64)
    rows = -np.log(np.exp(np.diag(logits)) / np.exp(logits).sum(axis=1))
    columns = -np.log(np.exp(np.diag(logits)) / np.exp(logits).sum(axis=0))
    return ((rows + columns) / 2).mean()


def test_infonce_matches_the_definition_and_ranks_partners():
    from keras_asr.losses import InfoNCELoss

    rng = np.random.default_rng(1)
    x = rng.normal(size=(9, 6)).astype("float32")
    y = (x + 0.5 * rng.normal(size=(9, 6))).astype("float32")
    for temperature in (0.1, 1.0):
        value = float(ops.convert_to_numpy(InfoNCELoss(temperature=temperature)(x, y)))
        np.testing.assert_allclose(value, infonce_by_hand(x, y, temperature), rtol=1e-4)
    # Partners in place cost less than partners shuffled.
    loss = InfoNCELoss()
    assert float(ops.convert_to_numpy(loss(x, y))) < float(ops.convert_to_numpy(loss(x, y[::-1])))
    clone = keras.losses.deserialize(keras.losses.serialize(InfoNCELoss(temperature=0.3)))
    assert isinstance(clone, InfoNCELoss) and clone.temperature == 0.3


def test_losses_by_name():
    import pytest

    from keras_asr.losses import InfoNCELoss
    from keras_asr.losses import get_loss

    hinge = get_loss("hinge", margin=0.5)
    assert isinstance(hinge, PairwiseRankingLoss) and hinge.margin == 0.5
    assert isinstance(get_loss("infonce"), InfoNCELoss)
    mine = PairwiseRankingLoss(margin=0.1)
    assert get_loss(mine) is mine
    with pytest.raises(ValueError, match="Unknown loss 'triplet'"):
        get_loss("triplet")
    with pytest.raises(ValueError, match="temperature must be positive"):
        get_loss("infonce", temperature=0)
