"""The CCA projection layer: maps two views into their canonical correlation space."""

import keras
import numpy as np
from keras import ops


def _whitening_factor(cov):
    """Lower Cholesky factor `L` of `cov`; `x @ inv(L).T` is white (identity covariance)."""
    return ops.cholesky(cov)


def _whiten(centred, chol):
    """`centred @ inv(chol).T`, by a triangular solve (no explicit inverse)."""
    return ops.transpose(ops.solve_triangular(chol, ops.transpose(centred), lower=True))


def _cross_correlation(chol_x, chol_y, cov_xy):
    """`T = inv(Lx) @ Sxy @ inv(Ly).T`: the cross-covariance of the two whitened views."""
    left = ops.solve_triangular(chol_x, cov_xy, lower=True)
    return ops.transpose(ops.solve_triangular(chol_y, ops.transpose(left), lower=True))


@ops.custom_gradient
def _polar_factor(t):
    """Orthogonal polar factor `Q = U V^T` of `T = U S V^T`, with an exact, finite gradient.

    The gradient of SVD factors contains 1 / (s_i - s_j) and breaks where canonical correlations
    coincide; that of the polar factor has 1 / (s_i + s_j) instead, finite unless two singular values
    are both zero - and then the upstream gradient in that subspace is itself zero, so it is dropped.
    """
    u, s, vh = ops.svd(t)
    q = ops.matmul(u, vh)

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        v = ops.transpose(vh)
        g_hat = ops.matmul(ops.matmul(ops.transpose(u), upstream), v)
        denom = s[:, None] + s[None, :]
        safe = denom > 1e-6 * ops.max(s)
        coeff = ops.where(safe, (g_hat - ops.transpose(g_hat)) / ops.where(safe, denom, 1.0), 0.0)
        return ops.matmul(ops.matmul(u, coeff), vh)

    return q, grad


def cca_projections(cov_xx, cov_yy, cov_xy):
    """Projection matrices `(Px, Py)` such that `(x - mx) @ Px`, `(y - my) @ Py` are the canonical variates.

    Args:
        cov_xx: `(d, d)` regularized covariance of view x.
        cov_yy: `(d, d)` regularized covariance of view y.
        cov_xy: `(d, d)` cross-covariance.

    Returns:
        `(Px, Py, correlations)`: the projected views are white, and dimension i of one correlates
        only with dimension i of the other, with the canonical correlation `correlations[i]`.
    """
    chol_x = _whitening_factor(cov_xx)
    chol_y = _whitening_factor(cov_yy)
    t = _cross_correlation(chol_x, chol_y, cov_xy)
    u, s, vh = ops.svd(t)
    eye = ops.eye(ops.shape(cov_xx)[0], dtype=cov_xx.dtype)
    # inv(L).T @ U, again by triangular solves.
    px = ops.transpose(ops.solve_triangular(chol_x, eye, lower=True))
    py = ops.transpose(ops.solve_triangular(chol_y, eye, lower=True))
    return ops.matmul(px, u), ops.matmul(py, ops.transpose(vh)), s


@keras.saving.register_keras_serializable(package="keras_asr")
class CCAProjection(keras.layers.Layer):
    """Projects two views into their shared canonical correlation space.

    In training, every batch is centred with its own mean and projected with the CCA of that batch
    (`(x - mx) Sxx^-1/2 U` and `(y - my) Syy^-1/2 V`, where `Sxx^-1/2 Sxy Syy^-1/2 = U S V^T`), and the
    gradients flow through it. Whitening is done with Cholesky factors, and the rotation onto the
    canonical axes enters the gradient only through the polar factor `U V^T` of the whitened
    cross-covariance, whose derivative is finite where correlations coincide. That gradient is exact
    for losses that are invariant to a common rotation of both views, such as the cosine ranking loss.

    Moving averages of the means and covariances are kept for inference, where the layer applies the
    fixed projections stored in `mean_x`, `mean_y`, `projection_x` and `projection_y`. `refine()`
    recomputes all of them from a whole set of embeddings (the paper's post-training CCA refinement).

    Called on a list `[x, y]`, the layer returns `[x_projected, y_projected]`; called on a single
    tensor with `view=0` (x) or `view=1` (y), it applies that view's inference projection alone,
    so one trained layer also serves two stand-alone encoders.

    Args:
        regularization: `r` added to the diagonal of both view covariances.
        momentum: decay of the moving statistics (`stat = momentum * stat + (1 - momentum) * batch`).
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    ```python
    x = np.random.normal(size=(100, 32)).astype("float32")
    y = x @ np.random.normal(size=(32, 32)).astype("float32")
    layer = keras_asr.layers.CCAProjection()
    x_cca, y_cca = layer([x, y], training=True)  # batch CCA, updates moving stats
    layer.refine(x, y)                            # fit the inference projection on a whole set
    y_only = layer(y, view=1)                     # one view, inference
    ```
    """

    def __init__(self, regularization=1e-3, momentum=0.99, **kwargs):
        # Always float32, whatever the global policy: Cholesky and SVD have no bfloat16 kernels, and the
        # batch covariances of 32-d features need more than bfloat16's 8 mantissa bits. Under
        # `mixed_bfloat16` the inputs are cast up here and the moving statistics stay float32.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.regularization = float(regularization)
        self.momentum = float(momentum)
        self.supports_masking = False

    def build(self, input_shape):
        if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 2):
            raise ValueError(
                "CCAProjection is first called on a list of two views [x, y]; got input shape "
                f"{input_shape}."
            )
        dim_x, dim_y = input_shape[0][-1], input_shape[1][-1]
        if dim_x != dim_y:
            raise ValueError(f"CCAProjection needs views of equal size; got {dim_x} and {dim_y}.")
        self.dim = dim_x

        vector, matrix = (self.dim,), (self.dim, self.dim)

        def stat(name, shape, initializer):
            return self.add_weight(name=name, shape=shape, initializer=initializer, trainable=False)

        self.mean_x = stat("mean_x", vector, "zeros")
        self.mean_y = stat("mean_y", vector, "zeros")
        self.moving_cov_xx = stat("moving_cov_xx", matrix, "identity")
        self.moving_cov_yy = stat("moving_cov_yy", matrix, "identity")
        self.moving_cov_xy = stat("moving_cov_xy", matrix, "zeros")
        self.projection_x = stat("projection_x", matrix, "identity")
        self.projection_y = stat("projection_y", matrix, "identity")
        self.built = True

    def _batch_statistics(self, x, y):
        m = ops.cast(ops.shape(x)[0], x.dtype)
        mean_x, mean_y = ops.mean(x, axis=0), ops.mean(y, axis=0)
        xc, yc = x - mean_x, y - mean_y
        eye = ops.eye(self.dim, dtype=x.dtype)
        cov_xx = ops.matmul(ops.transpose(xc), xc) / (m - 1) + self.regularization * eye
        cov_yy = ops.matmul(ops.transpose(yc), yc) / (m - 1) + self.regularization * eye
        cov_xy = ops.matmul(ops.transpose(xc), yc) / (m - 1)
        return xc, yc, mean_x, mean_y, cov_xx, cov_yy, cov_xy

    def _check_batch_size(self, x):
        message = (
            "CCA on a batch of {} " + f"{self.dim}-d pairs: a batch at or below the embedding size is "
            "fitted exactly (the ranking loss is then 0) and small ones give noisy covariances. Use "
            f"batches well above {2 * self.dim} pairs (the paper uses 100) and drop remainders "
            "(`drop_remainder=True` in tf.data)."
        )
        batch = x.shape[0]  # static under JAX and PyTorch, and in TensorFlow where the data says so
        if isinstance(batch, int):
            if batch <= 2 * self.dim:
                raise ValueError(message.format(batch))
        elif keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.debugging.assert_greater(tf.shape(x)[0], 2 * self.dim, message=message.format("unknown size"))

    def _train_projection(self, x, y):
        self._check_batch_size(x)
        xc, yc, mean_x, mean_y, cov_xx, cov_yy, cov_xy = self._batch_statistics(x, y)
        chol_x, chol_y = _whitening_factor(cov_xx), _whitening_factor(cov_yy)
        xw, yw = _whiten(xc, chol_x), _whiten(yc, chol_y)
        t = _cross_correlation(chol_x, chol_y, cov_xy)
        # Forward: xw U and yw V. Gradient: through xw, yw and Q = U V^T only (xw Q V = xw U).
        v = ops.stop_gradient(ops.transpose(ops.svd(t)[2]))
        out_x = ops.matmul(ops.matmul(xw, _polar_factor(t)), v)
        out_y = ops.matmul(yw, v)
        self._update_statistics(mean_x, mean_y, cov_xx, cov_yy, cov_xy)
        return [out_x, out_y]

    def _update_statistics(self, mean_x, mean_y, cov_xx, cov_yy, cov_xy):
        def moving_average(var, batch):
            value = var * self.momentum + ops.stop_gradient(batch) * (1.0 - self.momentum)
            var.assign(value)
            return value

        moving_average(self.mean_x, mean_x)
        moving_average(self.mean_y, mean_y)
        px, py, _ = cca_projections(
            moving_average(self.moving_cov_xx, cov_xx),
            moving_average(self.moving_cov_yy, cov_yy),
            moving_average(self.moving_cov_xy, cov_xy),
        )
        self.projection_x.assign(px)
        self.projection_y.assign(py)

    def call(self, inputs, training=None, view=None):
        if view is not None:
            if view not in (0, 1):
                raise ValueError(f"view must be 0 (x) or 1 (y); got {view!r}.")
            mean, proj = (self.mean_x, self.projection_x) if view == 0 else (self.mean_y, self.projection_y)
            return ops.matmul(inputs - mean, proj)
        x, y = inputs
        if training:
            return self._train_projection(x, y)
        return [
            ops.matmul(x - self.mean_x, self.projection_x),
            ops.matmul(y - self.mean_y, self.projection_y),
        ]

    def refine(self, x, y):
        """Sets the inference statistics and projections from whole sets of embeddings.

        The statistics are computed in float64 with NumPy, since the sets can be large.

        Args:
            x: array `(n, d)` of view-x inputs of this layer (e.g. sheet embeddings before CCA).
            y: array `(n, d)` of view-y inputs, paired row by row with `x`.

        Returns:
            The canonical correlations of the set, a NumPy array `(d,)`.
        """
        x = np.asarray(keras.ops.convert_to_numpy(x), dtype="float64")
        y = np.asarray(keras.ops.convert_to_numpy(y), dtype="float64")
        if x.shape != y.shape or x.ndim != 2:
            raise ValueError(f"refine needs two paired (n, d) arrays; got {x.shape} and {y.shape}.")
        if x.shape[0] <= x.shape[1]:
            raise ValueError(f"refine needs more pairs than dimensions; got {x.shape[0]} pairs.")
        n = x.shape[0]
        mean_x, mean_y = x.mean(0), y.mean(0)
        xc, yc = x - mean_x, y - mean_y
        eye = np.eye(x.shape[1])
        cov_xx = xc.T @ xc / (n - 1) + self.regularization * eye
        cov_yy = yc.T @ yc / (n - 1) + self.regularization * eye
        cov_xy = xc.T @ yc / (n - 1)
        px, py, corr = cca_projections_numpy(cov_xx, cov_yy, cov_xy)
        for var, value in (
            (self.mean_x, mean_x),
            (self.mean_y, mean_y),
            (self.moving_cov_xx, cov_xx),
            (self.moving_cov_yy, cov_yy),
            (self.moving_cov_xy, cov_xy),
            (self.projection_x, px),
            (self.projection_y, py),
        ):
            # Assign NumPy copies: on JAX, assigning one variable's array to another shares its buffer.
            var.assign(np.array(value, dtype=var.dtype))
        return corr

    def get_config(self):
        config = super().get_config()
        config.update({"regularization": self.regularization, "momentum": self.momentum})
        return config


def cca_projections_numpy(cov_xx, cov_yy, cov_xy):
    """Float64 NumPy twin of `cca_projections`, for offline refinement on large sets."""
    chol_x = np.linalg.cholesky(cov_xx)
    chol_y = np.linalg.cholesky(cov_yy)
    inv_x = np.linalg.inv(chol_x)
    inv_y = np.linalg.inv(chol_y)
    u, s, vh = np.linalg.svd(inv_x @ cov_xy @ inv_y.T)
    return inv_x.T @ u, inv_y.T @ vh.T, s
