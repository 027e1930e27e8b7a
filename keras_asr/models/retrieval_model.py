"""The two-tower retrieval model: sheet and audio encoders joined by a CCA projection layer."""

import keras
from keras import layers

from keras_asr.geometry import CONTEXTS
from keras_asr.geometry import FRONT_END
from keras_asr.layers.cca import CCAProjection
from keras_asr.losses import get_loss
from keras_asr.models.encoders import SHEET_SHAPE
from keras_asr.models.encoders import SPECTROGRAM_BINS
from keras_asr.models.encoders import AudioEncoder
from keras_asr.models.encoders import SheetEncoder

# Four 2x2 poolings: a custom context that is a multiple of 16 frames loses no frame to them.
FRAME_MULTIPLE = 16


def resolve_context(context):
    """Frames of a context: `"SC"`, `"MC"`, `"LC"`, the paper's 42/84/168, or a positive multiple of 16."""
    if isinstance(context, str):
        if context.upper() not in CONTEXTS:
            raise ValueError(
                f"Unknown context {context!r}: use one of {sorted(CONTEXTS)} or a number of frames "
                f"(20 per second) that is a multiple of {FRAME_MULTIPLE}."
            )
        return CONTEXTS[context.upper()]
    if isinstance(context, bool) or not isinstance(context, int):
        raise ValueError(f"context must be a name or an int number of frames; got {context!r}.")
    if context in CONTEXTS.values():
        return context
    if context < FRAME_MULTIPLE or context % FRAME_MULTIPLE:
        raise ValueError(
            f"A context of {context} frames is not a multiple of {FRAME_MULTIPLE}: the audio encoder "
            f"pools time by 2 four times. Use a multiple of {FRAME_MULTIPLE} (e.g. "
            f"{max(FRAME_MULTIPLE, round(context / FRAME_MULTIPLE) * FRAME_MULTIPLE)}) or one of "
            f"{CONTEXTS}."
        )
    return context


@keras.saving.register_keras_serializable(package="keras_asr")
class RetrievalModel(keras.Model):
    """Embeds sheet snippets and audio excerpts into one 32-d space (the paper's Table 1).

    Inputs: a dict with `"spectrogram"`, `(batch, 92, frames)` log-frequency spectrogram excerpts,
    and `"sheet"`, `(batch, 80, 100)` snippets in `[0, 1]` with white = 1. Outputs: a dict with
    `"sheet_embedding"` and `"audio_embedding"`, CCA-projected and L2-normalised, so the dot
    product is the cosine similarity used for retrieval.

    Training uses the CCA of each batch (batch size well above 32: 100 in the paper), and
    `compile(loss=PairwiseRankingLoss())` + `fit(pairs)` needs no targets: the partner of each
    item is the target. For retrieval, `sheet_encoder` and `audio_encoder` embed one modality
    alone with the CCA's inference statistics, and `audio_tower.attention_model` reads out the
    attention weights.

    The towers are arguments, built by `build_model` for the paper's variants: any pair of Keras models from
    `(batch, 80, 100)` snippets and `(batch, 92, frames)` excerpts to features of one size serves, and both are
    saved with the model.

    Args:
        sheet_tower: the sheet pathway (`SheetEncoder` for the paper's models).
        audio_tower: the audio pathway (`AudioEncoder`); its input fixes the context in frames.
        cca_regularization: `r` added to the CCA covariances.
        cca_momentum: decay of the CCA's moving statistics.
        front_end: the audio front end and snippet geometry the model expects (`geometry.FRONT_END`, what
            keras-asr computes; saved with the model). A model saved with another one does not load.
        **kwargs: standard `keras.Model` arguments.

    Example:
    ```python
    model = keras_asr.build_model(context="LC", attention=True)  # or:
    model = keras_asr.models.RetrievalModel(
        sheet_tower=keras_asr.models.SheetEncoder(name="sheet_tower"),
        audio_tower=keras_asr.models.AudioEncoder(168, attention=True, name="audio_tower"),
    )
    model.compile(optimizer=keras.optimizers.Adam(0.002), loss=keras_asr.PairwiseRankingLoss())
    model.fit(pairs_dataset, epochs=1)  # yields {"spectrogram": ..., "sheet": ...} batches of 100
    query = model.audio_encoder.predict(excerpts)  # (n, 32), unit norm
    ```
    """

    def __init__(
        self,
        sheet_tower,
        audio_tower,
        cca_regularization=1e-3,
        cca_momentum=0.99,
        front_end=None,
        **kwargs,
    ):
        front_end = dict(FRONT_END if front_end is None else front_end)
        if front_end != FRONT_END:
            differ = ", ".join(f"{k} {front_end.get(k)!r} (keras-asr: {v!r})" for k, v in FRONT_END.items()
                               if front_end.get(k) != v)
            raise ValueError(f"This model expects another front end than keras-asr computes: {differ}. Its "
                             "spectrograms or snippets would not mean what it learnt.")
        frames = audio_tower.input_shape[-1]
        # === Layers ===
        cca = CCAProjection(regularization=cca_regularization, momentum=cca_momentum, name="cca")
        # float32 from the CCA on, under any precision policy: the loss and retrieval compare cosines.
        sheet_normalize = layers.UnitNormalization(name="sheet_l2", dtype="float32")
        audio_normalize = layers.UnitNormalization(name="audio_l2", dtype="float32")

        # === Functional Model ===
        sheet = keras.Input(shape=SHEET_SHAPE, name="sheet")
        spectrogram = keras.Input(shape=(SPECTROGRAM_BINS, frames), name="spectrogram")
        sheet_cca, audio_cca = cca([sheet_tower(sheet), audio_tower(spectrogram)])
        super().__init__(
            inputs={"spectrogram": spectrogram, "sheet": sheet},
            outputs={
                "sheet_embedding": sheet_normalize(sheet_cca),
                "audio_embedding": audio_normalize(audio_cca),
            },
            **kwargs,
        )
        # Assigned after the functional init (the PyTorch backend allows no modules before it).
        self.sheet_tower = sheet_tower
        self.audio_tower = audio_tower
        self.cca = cca
        self.sheet_normalize = sheet_normalize
        self.audio_normalize = audio_normalize

        # === Config ===
        self.frames = frames
        self.cca_regularization = cca_regularization
        self.cca_momentum = cca_momentum
        self.front_end = front_end
        self._encoders = {}

    # What the paper's towers say of themselves (other towers: no attention, their own head).
    @property
    def attention(self):
        return bool(getattr(self.audio_tower, "attention", False))

    @property
    def head(self):
        return getattr(self.audio_tower, "head", None)

    def _encoder(self, view):
        # One stand-alone model per modality, sharing this model's layers and weights.
        if view not in self._encoders:
            tower, normalize, shape = (
                (self.sheet_tower, self.sheet_normalize, SHEET_SHAPE)
                if view == 0
                else (self.audio_tower, self.audio_normalize, (SPECTROGRAM_BINS, self.frames))
            )
            name = ("sheet", "audio")[view]
            inputs = keras.Input(shape=shape, name=("sheet", "spectrogram")[view])
            outputs = normalize(self.cca(tower(inputs), view=view))
            self._encoders[view] = keras.Model(inputs, outputs, name=f"{name}_encoder")
        return self._encoders[view]

    @property
    def sheet_encoder(self):
        """`(batch, 80, 100)` sheet snippets -> `(batch, 32)` unit-norm embeddings."""
        return self._encoder(0)

    @property
    def audio_encoder(self):
        """`(batch, 92, frames)` spectrogram excerpts -> `(batch, 32)` unit-norm embeddings."""
        return self._encoder(1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # Unlabelled pairs: each sheet embedding is the target of its audio partner.
        if y is None and isinstance(y_pred, dict):
            y, y_pred = y_pred["sheet_embedding"], y_pred["audio_embedding"]
        return super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "sheet_tower": keras.saving.serialize_keras_object(self.sheet_tower),
                "audio_tower": keras.saving.serialize_keras_object(self.audio_tower),
                "cca_regularization": self.cca_regularization,
                "cca_momentum": self.cca_momentum,
                "front_end": self.front_end,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "sheet_tower" in config:
            for key in ("sheet_tower", "audio_tower"):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        else:  # saved before the towers were arguments: they were built from these
            context, attention, head = config.pop("context", "SC"), config.pop("attention", False), config.pop(
                "head", "dense")
            config.update(_paper_towers(context, attention, head, config.pop("weight_decay", 1e-5)))
        return cls(**config)


def _paper_towers(context, attention, head, weight_decay, dtype=None):
    """The sheet and audio towers of the paper's variants, as `RetrievalModel` arguments."""
    return {
        "sheet_tower": SheetEncoder(head=head, weight_decay=weight_decay, dtype=dtype, name="sheet_tower"),
        "audio_tower": AudioEncoder(resolve_context(context), attention=attention, head=head,
                                    weight_decay=weight_decay, dtype=dtype, name="audio_tower"),
    }


# `build_model(precision=...)`: "float32", or bfloat16 convolutions with float32 weights ("mixed_bfloat16").
PRECISIONS = ("float32", "mixed_bfloat16")


def build_model(context="SC", attention=False, head="dense", precision=None, weight_decay=1e-5, **kwargs):
    """Builds the retrieval model of the paper (see `RetrievalModel`) with its towers.

    Args:
        context: `"SC"` (42 frames), `"MC"` (84), `"LC"` (168) or a multiple of 16 frames.
        attention: add the soft-attention pathway (`+ AT` in the paper).
        head: `"dense"` (BL2) or `"gap"` (BL1).
        precision: None (the global Keras dtype policy), `"float32"` or `"mixed_bfloat16"`: the encoders
            then compute in bfloat16 with float32 weights, while the CCA layer, its moving statistics, the
            L2 normalisation and the loss stay float32. The policy is saved with the model.
        weight_decay: L2 factor on all parameters of the towers.
        **kwargs: further `RetrievalModel` arguments.

    Returns:
        An uncompiled `RetrievalModel`.

    Example:
    ```python
    model = keras_asr.build_model(context="LC", attention=True, precision="mixed_bfloat16")
    model.compile(optimizer=keras.optimizers.Adam(0.002), loss=keras_asr.PairwiseRankingLoss())
    ```
    """
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}.")
    return RetrievalModel(**_paper_towers(context, attention, head, weight_decay, dtype=precision), **kwargs)


def compile_model(model, learning_rate=0.002, loss="hinge", jit_compile="auto", **loss_arguments):
    """Compiles `model` for training: Adam and a ranking loss (the paper's hinge by default).

    Args:
        model: a `RetrievalModel`.
        learning_rate: Adam's learning rate (0.002 in the paper).
        loss: a name of `keras_asr.losses.LOSSES` ("hinge", "infonce") or a `keras.losses.Loss`.
        jit_compile: passed to `model.compile`.
        **loss_arguments: passed to the named loss (e.g. `margin=0.7`, `temperature=0.1`).
    """
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=get_loss(loss, **loss_arguments),
                  jit_compile=jit_compile)
    return model
