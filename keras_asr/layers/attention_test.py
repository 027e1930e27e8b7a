import numpy as np
from keras import ops

from keras_asr.layers.attention import FrameAttention
from keras_asr.testing import gradient


def test_uniform_scores_leave_the_spectrogram_unchanged():
    spec = np.linspace(0, 1, 2 * 92 * 42, dtype="float32").reshape(2, 92, 42, 1)
    attended, weights = FrameAttention()([spec, np.zeros((2, 42), "float32")])
    np.testing.assert_allclose(ops.convert_to_numpy(weights), 1 / 42, rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(attended), spec, rtol=1e-5)


def test_weights_sum_to_one_and_scale_each_frame():
    rng = np.random.default_rng(0)
    spec = np.ones((3, 92, 16, 1), "float32")
    scores = rng.normal(size=(3, 16)).astype("float32")
    attended, weights = FrameAttention()([spec, scores])
    weights = ops.convert_to_numpy(weights)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)
    expected = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(weights, expected, rtol=1e-5)
    # Every bin of frame t is multiplied by a_t * C.
    np.testing.assert_allclose(ops.convert_to_numpy(attended)[:, 7, :, 0], weights * 16, rtol=1e-5)


def test_scores_receive_gradient():
    spec = np.arange(92 * 16, dtype="float32").reshape(1, 92, 16, 1) / 1000

    def attended_energy_of_frame_3(scores):
        attended, _ = FrameAttention()([ops.convert_to_tensor(spec), scores])
        return ops.sum(attended[:, :, 3, :])

    grad = gradient(attended_energy_of_frame_3, np.zeros((1, 16), "float32"))
    # Raising frame 3's score raises its weight (and lowers the others').
    assert grad[0, 3] > 0 and np.all(np.delete(grad[0], 3) < 0)
