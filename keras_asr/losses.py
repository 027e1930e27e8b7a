"""Ranking losses on cosine similarity, with all other items of a batch as negatives.

`PairwiseRankingLoss` is the paper's hinge; `InfoNCELoss` the contrastive cross-entropy of CLIP and of later
audio-sheet work. `LOSSES` names them for `keras-asr train --loss`; a new loss is a class here and a name there.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_asr")
class PairwiseRankingLoss(keras.losses.Loss):
    """Hinge loss that ranks each item's partner above every other item of the batch.

    For anchors `x` (`y_true`) and their partners `y` (`y_pred`), with cosine similarity `s`:
    `mean over i != j of max(0, margin - s(x_i, y_i) + s(x_i, y_j))`. Per sample `i`, the loss is the
    mean over its `batch - 1` negatives, so the default reduction gives the mean over all pairs.

    `RetrievalModel` feeds its sheet embeddings as `y_true` and its audio embeddings as `y_pred`,
    so `model.compile(loss=PairwiseRankingLoss())` and `model.fit` on unlabelled pairs just work.

    Args:
        margin: the hinge margin (0.7 in the paper).
        **kwargs: standard `keras.losses.Loss` arguments.

    Example:
    ```python
    loss = keras_asr.losses.PairwiseRankingLoss()
    sheet = np.eye(4, 8, dtype="float32")
    loss(sheet, sheet)  # 0.7 - 1 + 0 < 0 for every negative: 0.0
    ```
    """

    def __init__(self, margin=0.7, name="pairwise_ranking_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.margin = float(margin)

    def call(self, y_true, y_pred):
        anchors = ops.normalize(ops.convert_to_tensor(y_true), axis=-1)
        partners = ops.normalize(ops.convert_to_tensor(y_pred), axis=-1)
        similarity = ops.matmul(anchors, ops.transpose(partners))
        positive = ops.diagonal(similarity)[:, None]
        batch = ops.shape(similarity)[0]
        negatives = 1.0 - ops.eye(batch, dtype=similarity.dtype)
        hinge = ops.relu(self.margin - positive + similarity) * negatives
        return ops.sum(hinge, axis=1) / ops.cast(batch - 1, similarity.dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"margin": self.margin})
        return config


@keras.saving.register_keras_serializable(package="keras_asr")
class InfoNCELoss(keras.losses.Loss):
    """Symmetric InfoNCE: each item's partner is the right class among all items of the batch.

    With cosine similarities `s` scaled by `1 / temperature`, the loss of pair `i` is the mean of the
    cross-entropy of row `i` (anchor `x_i` against every `y_j`) and of column `i` (partner `y_i` against every
    `x_j`), both with `i` as the target: CLIP's loss on the two views of this model.

    Args:
        temperature: the softmax temperature (CLIP learns it and ends near 0.01; 0.1 suits 32-d embeddings).
        **kwargs: standard `keras.losses.Loss` arguments.

    Example:
    ```python
    loss = keras_asr.losses.InfoNCELoss(temperature=0.1)
    sheet = np.eye(4, 8, dtype="float32")
    loss(sheet, sheet)  # each row's partner far ahead: about 4 * exp(-10), close to 0
    ```
    """

    def __init__(self, temperature=0.1, name="infonce_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if not temperature > 0:
            raise ValueError(f"temperature must be positive; got {temperature!r}.")
        self.temperature = float(temperature)

    def call(self, y_true, y_pred):
        anchors = ops.normalize(ops.convert_to_tensor(y_true), axis=-1)
        partners = ops.normalize(ops.convert_to_tensor(y_pred), axis=-1)
        logits = ops.matmul(anchors, ops.transpose(partners)) / self.temperature
        positive = ops.diagonal(logits)
        rows = ops.logsumexp(logits, axis=1) - positive
        columns = ops.logsumexp(logits, axis=0) - positive
        return (rows + columns) / 2.0

    def get_config(self):
        config = super().get_config()
        config.update({"temperature": self.temperature})
        return config


# `keras-asr train --loss NAME`: the paper's hinge and the contrastive alternative.
LOSSES = {"hinge": PairwiseRankingLoss, "infonce": InfoNCELoss}


def get_loss(loss="hinge", **arguments):
    """A loss by name (`LOSSES`) with its arguments, or a `keras.losses.Loss` as given."""
    if isinstance(loss, keras.losses.Loss):
        if arguments:
            raise ValueError(f"Loss arguments {sorted(arguments)} go with a loss name, not a loss object.")
        return loss
    if loss not in LOSSES:
        raise ValueError(f"Unknown loss {loss!r}: use one of {sorted(LOSSES)} or a keras.losses.Loss.")
    return LOSSES[loss](**arguments)
