"""The two CNN pathways of the paper's Table 1: a sheet-snippet encoder and an audio-excerpt encoder."""

import contextlib

import keras
from keras import layers

from keras_asr.geometry import NUM_BINS as SPECTROGRAM_BINS
from keras_asr.geometry import SNIPPET_SHAPE as SHEET_SHAPE
from keras_asr.layers.attention import FrameAttention

EMBEDDING_DIM = 32
HEADS = ("dense", "gap")
TRUNK_FILTERS = (24, 48, 96, 96)


def _regularizer(weight_decay):
    return keras.regularizers.L2(weight_decay) if weight_decay else None


def conv_block(
    x, filters, name, weight_decay, kernel_size=3, batch_norm=True, use_bias=False, activation="elu"
):
    """Conv (no bias) -> BatchNorm (eps 1e-4, momentum 0.9) -> ELU, as the original Lasagne blocks."""
    reg = _regularizer(weight_decay)
    x = layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        use_bias=use_bias,
        kernel_initializer="lecun_uniform",
        kernel_regularizer=reg,
        bias_regularizer=reg if use_bias else None,
        name=f"{name}_conv",
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(
            epsilon=1e-4,
            momentum=0.9,
            beta_regularizer=reg,
            gamma_regularizer=reg,
            name=f"{name}_bn",
        )(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_{activation}")(x)
    return x


def conv_trunk(x, name, weight_decay):
    """Four stages of two 3x3 conv blocks (24, 48, 96, 96 filters), each followed by 2x2 max-pooling."""
    for stage, filters in enumerate(TRUNK_FILTERS, start=1):
        for sub in "ab":
            x = conv_block(x, filters, f"{name}_block{stage}{sub}", weight_decay)
        x = layers.MaxPooling2D(2, name=f"{name}_pool{stage}")(x)
    return x


def embedding_head(x, name, head, weight_decay, batch_norm=True):
    """The 1x1 conv to 32 channels and the BL1 ("gap") or BL2 ("dense") head.

    BL1: 1x1 conv -> BN -> global average pooling. BL2: 1x1 conv (-> BN) -> flatten -> Dense(32).
    BL2's sheet pathway has no BN after the 1x1 conv but a bias instead.
    """
    x = conv_block(
        x,
        EMBEDDING_DIM,
        f"{name}_proj",
        weight_decay,
        kernel_size=1,
        batch_norm=batch_norm,
        use_bias=not batch_norm,
        activation=None,
    )
    if head == "gap":
        return layers.GlobalAveragePooling2D(name=f"{name}_gap")(x)
    x = layers.Flatten(name=f"{name}_flatten")(x)
    return layers.Dense(
        EMBEDDING_DIM,
        kernel_initializer="lecun_uniform",
        kernel_regularizer=_regularizer(weight_decay),
        bias_regularizer=_regularizer(weight_decay),
        name=f"{name}_dense",
    )(x)


@contextlib.contextmanager
def dtype_policy_scope(dtype):
    """Layers made inside take `dtype` (a policy or its name; None: the global one) and the global policy is
    restored after: a functional encoder's inner layers take their policy when they are made."""
    previous = keras.config.dtype_policy()
    if dtype is not None:
        keras.config.set_dtype_policy(keras.dtype_policies.get(dtype))  # a name, a policy or its config
    try:
        yield keras.config.dtype_policy()
    finally:
        keras.config.set_dtype_policy(previous)


def _check_head(head):
    if head not in HEADS:
        raise ValueError(f"head must be one of {HEADS} ('gap' = BL1, 'dense' = BL2); got {head!r}.")


@keras.saving.register_keras_serializable(package="keras_asr")
class SheetEncoder(keras.Model):
    """Sheet-snippet pathway: an `(80, 100)` snippet (white = 1) -> a 32-d embedding (before CCA).

    Args:
        head: `"dense"` (BL2) or `"gap"` (BL1).
        weight_decay: L2 factor on all parameters.
        dtype: the dtype policy of its layers (None: the global one), e.g. "mixed_bfloat16"; saved with it.
        **kwargs: standard `keras.Model` arguments (`name`, ...).

    Example:
    ```python
    encoder = keras_asr.models.SheetEncoder(head="dense")
    features = encoder(np.ones((4, 80, 100), "float32"))  # (4, 32)
    ```
    """

    def __init__(self, head="dense", weight_decay=1e-5, dtype=None, **kwargs):
        _check_head(head)
        # === Functional Model ===
        with dtype_policy_scope(dtype) as policy:
            snippet = keras.Input(shape=SHEET_SHAPE, name="sheet")
            x = layers.Reshape((*SHEET_SHAPE, 1), name="sheet_channels")(snippet)
            x = conv_trunk(x, "sheet", weight_decay)
            features = embedding_head(x, "sheet", head, weight_decay, batch_norm=head == "gap")
        super().__init__(inputs=snippet, outputs=features, **kwargs)
        # === Config ===
        self.head = head
        self.weight_decay = weight_decay
        self.layer_policy = policy

    def get_config(self):
        # A functional model keeps no policy of its own: the one its layers were made with is saved instead.
        config = super().get_config() | {"dtype": keras.dtype_policies.serialize(self.layer_policy)}
        config.update({"head": self.head, "weight_decay": self.weight_decay})
        return config


@keras.saving.register_keras_serializable(package="keras_asr")
class AudioEncoder(keras.Model):
    """Audio-excerpt pathway: a `(92, frames)` spectrogram excerpt -> a 32-d embedding (before CCA).

    With `attention=True`, a separate conv trunk on the raw excerpt scores every frame
    (1x1 conv to `frames` channels, global average pooling), `FrameAttention` turns the scores into
    weights summing to 1 and multiplies each frame by `weight * frames` before the main trunk.

    Args:
        frames: context length in spectrogram frames (20 per second).
        attention: whether to add the soft-attention pathway.
        head: `"dense"` (BL2) or `"gap"` (BL1).
        weight_decay: L2 factor on all parameters.
        dtype: the dtype policy of its layers (None: the global one), e.g. "mixed_bfloat16"; saved with it.
        **kwargs: standard `keras.Model` arguments (`name`, ...).

    Example:
    ```python
    encoder = keras_asr.models.AudioEncoder(frames=168, attention=True)
    features = encoder(np.zeros((4, 92, 168), "float32"))  # (4, 32)
    weights = encoder.attention_model(np.zeros((4, 92, 168), "float32"))  # (4, 168), rows sum to 1
    ```
    """

    def __init__(self, frames, attention=False, head="dense", weight_decay=1e-5, dtype=None, **kwargs):
        _check_head(head)
        # === Functional Model ===
        with dtype_policy_scope(dtype) as policy:
            excerpt, features, weights = _audio_graph(frames, attention, head, weight_decay)
        super().__init__(inputs=excerpt, outputs=features, **kwargs)
        # === Config ===
        self.frames = frames
        self.attention = attention
        self.head = head
        self.weight_decay = weight_decay
        self.layer_policy = policy
        self._attention_weights = weights
        self._attention_model = None

    @property
    def attention_model(self):
        """A model from an excerpt to its attention weights `(batch, frames)` (rows sum to 1)."""
        if not self.attention:
            raise ValueError("This audio encoder was built with attention=False; it has no attention weights.")
        if self._attention_model is None:
            self._attention_model = keras.Model(self.input, self._attention_weights, name="attention_weights")
        return self._attention_model

    def get_config(self):
        config = super().get_config() | {"dtype": keras.dtype_policies.serialize(self.layer_policy)}
        config.update(
            {"frames": self.frames, "attention": self.attention, "head": self.head, "weight_decay": self.weight_decay}
        )
        return config


def _audio_graph(frames, attention, head, weight_decay):
    """The audio encoder's graph: (excerpt input, features, attention weights or None)."""
    excerpt = keras.Input(shape=(SPECTROGRAM_BINS, frames), name="spectrogram")
    x = layers.Reshape((SPECTROGRAM_BINS, frames, 1), name="spectrogram_channels")(excerpt)
    weights = None
    if attention:
        scores = conv_trunk(x, "attention", weight_decay)
        scores = layers.Conv2D(
            frames,
            1,
            kernel_initializer="lecun_uniform",
            kernel_regularizer=_regularizer(weight_decay),
            bias_regularizer=_regularizer(weight_decay),
            name="attention_scores",
        )(scores)
        scores = layers.GlobalAveragePooling2D(name="attention_gap")(scores)
        x, weights = FrameAttention(name="attention")([x, scores])
    x = conv_trunk(x, "audio", weight_decay)
    features = embedding_head(x, "audio", head, weight_decay, batch_norm=True)
    return excerpt, features, weights
