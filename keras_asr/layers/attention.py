"""Soft attention over the frames of a spectrogram excerpt."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_asr")
class FrameAttention(keras.layers.Layer):
    """Re-weights the frames of a spectrogram with a softmax over per-frame scores.

    The weights `a = softmax(scores)` sum to 1 over the `C` frames; each frame is multiplied by
    `a * C`, so uniform attention leaves the spectrogram unchanged and the network can learn to
    skip frames of silence or sustained notes (which is what makes the audio encoder tempo-robust).

    Call arguments:
        inputs: a list `[spectrogram, scores]`: the spectrogram `(batch, bins, C, channels)` and the
            per-frame scores `(batch, C)`.

    Returns:
        `[attended_spectrogram, weights]`, shapes `(batch, bins, C, channels)` and `(batch, C)`.

    Example:
    ```python
    spec = np.ones((2, 92, 42, 1), "float32")
    scores = np.zeros((2, 42), "float32")
    attended, weights = keras_asr.layers.FrameAttention()([spec, scores])
    # uniform scores: weights == 1 / 42 and attended == spec
    ```
    """

    def call(self, inputs):
        spectrogram, scores = inputs
        weights = ops.softmax(scores, axis=-1)
        frames = ops.cast(ops.shape(scores)[-1], spectrogram.dtype)
        attended = spectrogram * (weights * frames)[:, None, :, None]
        return [attended, weights]

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape[0]), tuple(input_shape[1])]
