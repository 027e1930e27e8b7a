"""The two-tower retrieval model: sheet and audio encoders joined by a CCA projection layer."""

import keras
from keras import layers

from keras_asr.geometry import CONTEXTS
from keras_asr.geometry import FRONT_END
from keras_asr.layers.cca import CCAProjection
from keras_asr.losses import PairwiseRankingLoss
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

    Args:
        context: `"SC"`, `"MC"`, `"LC"` or a number of frames (see `resolve_context`).
        attention: add the soft-attention pathway to the audio encoder.
        head: `"dense"` (BL2, the paper's baseline) or `"gap"` (BL1).
        weight_decay: L2 factor on all parameters.
        cca_regularization: `r` added to the CCA covariances.
        cca_momentum: decay of the CCA's moving statistics.
        front_end: the audio front end and snippet geometry the model expects (`geometry.FRONT_END`, what
            keras-asr computes; saved with the model). A model saved with another one does not load.
        **kwargs: standard `keras.Model` arguments.

    Example:
    ```python
    model = keras_asr.build_model(context="LC", attention=True)
    model.compile(optimizer=keras.optimizers.Adam(0.002), loss=keras_asr.PairwiseRankingLoss())
    model.fit(pairs_dataset, epochs=1)  # yields {"spectrogram": ..., "sheet": ...} batches of 100
    query = model.audio_encoder.predict(excerpts)  # (n, 32), unit norm
    ```
    """

    def __init__(
        self,
        context="SC",
        attention=False,
        head="dense",
        weight_decay=1e-5,
        cca_regularization=1e-3,
        cca_momentum=0.99,
        front_end=None,
        **kwargs,
    ):
        frames = resolve_context(context)
        front_end = dict(FRONT_END if front_end is None else front_end)
        if front_end != FRONT_END:
            differ = ", ".join(f"{k} {front_end.get(k)!r} (keras-asr: {v!r})" for k, v in FRONT_END.items()
                               if front_end.get(k) != v)
            raise ValueError(f"This model expects another front end than keras-asr computes: {differ}. Its "
                             "spectrograms or snippets would not mean what it learnt.")
        # === Layers ===
        sheet_tower = SheetEncoder(head=head, weight_decay=weight_decay, name="sheet_tower")
        audio_tower = AudioEncoder(
            frames, attention=attention, head=head, weight_decay=weight_decay, name="audio_tower"
        )
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
        self.context = context
        self.frames = frames
        self.attention = attention
        self.head = head
        self.weight_decay = weight_decay
        self.cca_regularization = cca_regularization
        self.cca_momentum = cca_momentum
        self.front_end = front_end
        self._encoders = {}

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
        return {
            "name": self.name,
            "context": self.context,
            "attention": self.attention,
            "head": self.head,
            "weight_decay": self.weight_decay,
            "cca_regularization": self.cca_regularization,
            "cca_momentum": self.cca_momentum,
            "front_end": self.front_end,
        }


# `build_model(precision=...)`: "float32", or bfloat16 convolutions with float32 weights ("mixed_bfloat16").
PRECISIONS = ("float32", "mixed_bfloat16")


def build_model(context="SC", attention=False, head="dense", precision=None, **kwargs):
    """Builds the retrieval model of the paper (see `RetrievalModel`).

    Args:
        context: `"SC"` (42 frames), `"MC"` (84), `"LC"` (168) or a multiple of 16 frames.
        attention: add the soft-attention pathway (`+ AT` in the paper).
        head: `"dense"` (BL2) or `"gap"` (BL1).
        precision: None (the global Keras dtype policy), `"float32"` or `"mixed_bfloat16"`: the encoders
            then compute in bfloat16 with float32 weights, while the CCA layer, its moving statistics, the
            L2 normalisation and the loss stay float32. The policy is saved with the model.
        **kwargs: further `RetrievalModel` arguments.

    Returns:
        An uncompiled `RetrievalModel`.

    Example:
    ```python
    model = keras_asr.build_model(context="LC", attention=True, precision="mixed_bfloat16")
    model.compile(optimizer=keras.optimizers.Adam(0.002), loss=keras_asr.PairwiseRankingLoss())
    ```
    """
    if precision is None:
        return RetrievalModel(context=context, attention=attention, head=head, **kwargs)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}.")
    # Layers take the global policy when they are created; set it for the build only.
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        return RetrievalModel(context=context, attention=attention, head=head, **kwargs)
    finally:
        keras.config.set_dtype_policy(previous)


def compile_model(model, learning_rate=0.002, margin=0.7, **kwargs):
    """Compiles `model` as in the paper: Adam and the pairwise ranking loss."""
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=PairwiseRankingLoss(margin=margin),
        **kwargs,
    )
    return model
