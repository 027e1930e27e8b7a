"""The pairwise ranking loss on cosine similarity, with all other items of a batch as negatives."""

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
