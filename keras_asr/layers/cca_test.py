import keras
import numpy as np
import pytest
from keras import ops

from keras_asr.layers.cca import CCAProjection
from keras_asr.testing import gradient

M, D, R = 100, 6, 1e-3


def canonical_correlations_reference(x, y, r=R):
    """Float64 CCA the way the original Theano code does it: symmetric inverse roots and an SVD."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    s11 = xc.T @ xc / (len(x) - 1) + r * np.eye(x.shape[1])
    s22 = yc.T @ yc / (len(y) - 1) + r * np.eye(y.shape[1])
    s12 = xc.T @ yc / (len(x) - 1)

    def inv_sqrt(s):
        w, v = np.linalg.eigh(s)
        return v @ np.diag(w**-0.5) @ v.T

    t = inv_sqrt(s11) @ s12 @ inv_sqrt(s22)
    u, corr, vh = np.linalg.svd(t)
    return xc @ inv_sqrt(s11) @ u, yc @ inv_sqrt(s22) @ vh.T, corr


def ranking_loss_reference(x, y, margin=0.7):
    """Float64 cosine ranking loss on the reference CCA outputs (invariant to a common rotation)."""
    a, b, _ = canonical_correlations_reference(x, y)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    s = a @ b.T
    hinge = np.maximum(0.0, margin - np.diag(s)[:, None] + s)
    np.fill_diagonal(hinge, 0.0)
    return hinge.sum() / (len(x) * (len(x) - 1))


def ranking_loss_keras(x, y, margin=0.7):
    a, b = CCAProjection(regularization=R)([x, y], training=True)
    a = a / ops.norm(a, axis=1, keepdims=True)
    b = b / ops.norm(b, axis=1, keepdims=True)
    s = ops.matmul(a, ops.transpose(b))
    hinge = ops.relu(margin - ops.diagonal(s)[:, None] + s) * (1.0 - ops.eye(len(x)))
    return ops.sum(hinge) / (len(x) * (len(x) - 1))


def correlated_views(seed=0, noise_x=0.5, noise_y=0.8):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(M, D))
    x = (z + noise_x * rng.normal(size=(M, D))) @ rng.normal(size=(D, D))
    # Per-dimension noise spreads the canonical correlations apart, so each variate is well defined.
    y = (z + noise_y * np.linspace(0.2, 3.0, D) * rng.normal(size=(M, D))) @ rng.normal(size=(D, D))
    return x, y


def white(a):
    """Rescales the columns of `a` to an exactly identity sample covariance (minus the regularizer)."""
    a = a - a.mean(0)
    q, _ = np.linalg.qr(a)
    return q * np.sqrt(len(a) - 1)


def degenerate_cases():
    rng = np.random.default_rng(1)
    x, y = correlated_views(2)
    z = white(rng.normal(size=(M, D)))
    rotation = np.linalg.qr(rng.normal(size=(D, D)))[0]
    # Equal canonical correlations: y is a rotated, equally noisy copy of a white x.
    noise = white(rng.normal(size=(M, D)))
    noise -= z @ np.linalg.lstsq(z, noise, rcond=None)[0]
    equal = (z, (z + 0.5 * white(noise)) @ rotation)
    # An already white view, paired with a correlated one.
    already_white = (white(x), y)
    # Rank-deficient input: x spans only D - 3 dimensions.
    rank_deficient = (rng.normal(size=(M, D - 3)) @ rng.normal(size=(D - 3, D)), y)
    return {"equal_correlations": equal, "already_white": already_white, "rank_deficient": rank_deficient}


def finite_difference(fn, x, y, rows, directions, eps=1e-6):
    """Directional derivatives of `fn(x, y)`: entry [k, l] moves row rows[k] of x along directions[:, l]."""
    grad = np.zeros((len(rows), directions.shape[1]))
    for k, i in enumerate(rows):
        for l in range(directions.shape[1]):
            plus, minus = x.copy(), x.copy()
            plus[i] += eps * directions[:, l]
            minus[i] -= eps * directions[:, l]
            grad[k, l] = (fn(plus, y) - fn(minus, y)) / (2 * eps)
    return grad


def test_projection_matches_float64_reference():
    x, y = correlated_views()
    layer = CCAProjection(regularization=R)
    out_x, out_y = layer([x.astype("float32"), y.astype("float32")], training=True)
    out_x = ops.convert_to_numpy(out_x).astype("float64")
    out_y = ops.convert_to_numpy(out_y).astype("float64")
    ref_x, ref_y, corr = canonical_correlations_reference(x, y)
    # Canonical pairs are defined up to a common sign: align them with the reference.
    signs = np.sign(np.sum(out_x * ref_x, axis=0))
    out_x, out_y = out_x * signs, out_y * signs
    np.testing.assert_allclose(out_x, ref_x, atol=5e-3)
    np.testing.assert_allclose(out_y, ref_y, atol=5e-3)
    # Both views are white (up to the regularizer r, as in the reference) ...
    cov_x = out_x.T @ out_x / (M - 1)
    np.testing.assert_allclose(cov_x, ref_x.T @ ref_x / (M - 1), atol=2e-3)
    unregularized = CCAProjection(regularization=0.0)([x.astype("float32"), y.astype("float32")], training=True)
    for view in unregularized:
        view = ops.convert_to_numpy(view).astype("float64")
        np.testing.assert_allclose(view.T @ view / (M - 1), np.eye(D), atol=1e-3)
    # ... and dimension i of one correlates only with dimension i of the other, by the canonical
    # correlation: the cross-covariance is diag(corr).
    np.testing.assert_allclose(out_x.T @ out_y / (M - 1), np.diag(corr), atol=2e-3)
    assert corr[0] > 0.5 and np.all(np.diff(corr) <= 0)


@pytest.mark.parametrize("case", ["generic", "equal_correlations", "already_white", "rank_deficient"])
def test_gradient_is_finite_and_exact(case):
    x, y = correlated_views() if case == "generic" else degenerate_cases()[case]
    if case == "equal_correlations":
        corr = canonical_correlations_reference(x, y)[2]
        assert np.ptp(corr) < 1e-6, corr  # the case really has coinciding correlations
    if case == "rank_deficient":
        assert np.linalg.matrix_rank(x - x.mean(0)) == D - 3
    grad = gradient(lambda a: ranking_loss_keras(a, ops.convert_to_tensor(y.astype("float32"))), x.astype("float32"))
    assert np.all(np.isfinite(grad))
    # Where x is rank-deficient, the loss has a kink across the missing dimensions (the CCA of
    # that subspace is undefined): compare the derivative along the dimensions x spans.
    directions = np.linalg.svd(x - x.mean(0))[2][: np.linalg.matrix_rank(x - x.mean(0))].T
    rows = list(range(0, M, 9))
    expected = finite_difference(ranking_loss_reference, x, y, rows, directions)
    np.testing.assert_allclose(grad[rows] @ directions, expected, atol=2e-3 * np.abs(expected).max())


def test_moving_statistics_and_inference_projection():
    x, y = (v.astype("float32") for v in correlated_views())
    layer = CCAProjection(regularization=R, momentum=0.5)
    layer([x, y], training=True)
    # One update from the initial zeros / identity with momentum 0.5.
    np.testing.assert_allclose(ops.convert_to_numpy(layer.mean_x), 0.5 * x.mean(0), rtol=1e-4, atol=1e-5)
    cov_xy = np.cov(x.T, y.T)[:D, D:]
    np.testing.assert_allclose(ops.convert_to_numpy(layer.moving_cov_xy), 0.5 * cov_xy, rtol=1e-3, atol=1e-4)
    # Inference applies the stored projection, one view at a time or both.
    px = ops.convert_to_numpy(layer.projection_x)
    mx = ops.convert_to_numpy(layer.mean_x)
    inferred_x, _ = layer([x, y], training=False)
    np.testing.assert_allclose(ops.convert_to_numpy(inferred_x), (x - mx) @ px, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x, view=0)), (x - mx) @ px, rtol=1e-4, atol=1e-4)


def test_refine_sets_inference_to_the_full_set_cca():
    x, y = correlated_views(3)
    layer = CCAProjection(regularization=R)
    layer([x[:M].astype("float32"), y[:M].astype("float32")], training=True)
    corr = layer.refine(x, y)
    ref_x, ref_y, ref_corr = canonical_correlations_reference(x, y)
    np.testing.assert_allclose(corr, ref_corr, atol=1e-6)
    out_x = ops.convert_to_numpy(layer(x.astype("float32"), view=0)).astype("float64")
    out_y = ops.convert_to_numpy(layer(y.astype("float32"), view=1)).astype("float64")
    signs = np.sign(np.sum(out_x * ref_x, axis=0))
    np.testing.assert_allclose(out_x * signs, ref_x, atol=1e-3)
    np.testing.assert_allclose(out_y * signs, ref_y, atol=1e-3)
    with pytest.raises(ValueError, match="more pairs than dimensions"):
        layer.refine(x[:D], y[:D])


def test_small_batch_is_rejected():
    rng = np.random.default_rng(0)
    layer = CCAProjection()
    pairs = [rng.normal(size=(100, 32)).astype("float32") for _ in range(2)]
    layer(pairs, training=True)  # 100 pairs of 32-d views: fine
    with pytest.raises(ValueError, match="well above 64 pairs"):
        layer([p[:32] for p in pairs], training=True)


def test_config_round_trip_and_unequal_views():
    layer = CCAProjection(regularization=0.01, momentum=0.9, name="cca")
    clone = CCAProjection.from_config(layer.get_config())
    assert (clone.regularization, clone.momentum, clone.name) == (0.01, 0.9, "cca")
    with pytest.raises(ValueError, match="equal size"):
        CCAProjection()([np.zeros((100, 4), "float32"), np.zeros((100, 5), "float32")])
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer)).momentum == 0.9
