"""The embedding functions of a trained model, for indexing and querying: `Encoders` and `load_encoders`.

A `.keras` model or its SavedModel export (`keras_asr.export_encoders`) is loaded once; its sheet and audio
encoders then embed snippets and excerpts in batches, and `Encoders.model_id` (a hash of the weights) is what an
index records to refuse queries from another model. `RetrievalError`, the retrieval application's error for
input a message can explain, lives here too, where every module of the application can import it.

Example:

```python
encoders = load_encoders(model="bl1_sc_msmd.keras")   # or load_encoders(saved_model="export/")
encoders.sheet(snippets)                               # (n, 80, 100) -> (n, 32) unit embeddings
encoders.audio(excerpts)                               # (n, 92, encoders.frames) -> (n, 32)
```
"""

import hashlib
import os

import numpy as np

from keras_asr import index as index_lib
from keras_asr import windows

BATCH_SIZE = 64


class RetrievalError(ValueError):
    """A problem with the user's input (file, index, model) that a message can explain."""


class Encoders:
    """The sheet and audio embedding functions of one model, from a `.keras` file or a SavedModel export.

    Attributes:
        frames: audio excerpt length in frames (20 per second).
        model_id: identity of the weights (`index.model_id_of`); the same for a model and its SavedModel export.
        source: `{"model": path}` or `{"saved_model": directory}`, as recorded in an index.
    """

    def __init__(self, embed_sheet, embed_audio, frames, weights, source, attention=None, sliding=None):
        self._embed_sheet = embed_sheet
        self._sliding = sliding
        self._embed_audio = embed_audio
        self._attention = attention
        self.frames = int(frames)
        # Sorted by content, so that the id does not depend on the order a format lists its variables in.
        arrays = sorted((np.asarray(w) for w in weights), key=lambda a: hashlib.sha256(a.tobytes()).digest())
        self.model_id = index_lib.model_id_of(arrays, name=f"keras-asr-c{self.frames}")
        self.source = source

    @property
    def has_attention(self):
        return self._attention is not None

    def sheet(self, snippets):
        """(n, 80, 100) snippets -> (n, 32) unit embeddings."""
        return _batched(self._embed_sheet, snippets)

    def sheet_at(self, strip, x):
        """(k,) snippet centres of an unrolled score's strip -> (k, 32) unit embeddings.

        A `.keras` model of the paper's architecture embeds them in passes over the whole strip
        (`SlidingSheetEncoder`) where that is less work than snippet by snippet (snippets every 16 or 32 px;
        not at 25 px, whose centres fall on 32 different offsets of the pass); otherwise, and for a SavedModel,
        each snippet is cut (`windows.snippets`) and embedded alone.
        """
        if self.uses_sliding(x):
            return self._sliding(strip, x)
        return self.sheet(windows.snippets(strip, x))

    def uses_sliding(self, x):
        """Whether `sheet_at` embeds the snippets at centres `x` in passes over the strip."""
        return self._sliding is not None and len(x) > 0 and self._sliding.cost(x) < len(x)

    def audio(self, excerpts):
        """(n, 92, frames) spectrogram excerpts -> (n, 32) unit embeddings."""
        return _batched(self._embed_audio, excerpts)

    def attention(self, excerpts):
        """(n, frames) attention weights of the excerpts, or None for a model without attention."""
        return None if self._attention is None else _batched(self._attention, excerpts)


def _batched(fn, inputs):
    inputs = np.asarray(inputs, np.float32)
    outputs = [np.asarray(fn(inputs[i:i + BATCH_SIZE])) for i in range(0, len(inputs), BATCH_SIZE)]
    return np.concatenate(outputs) if outputs else np.zeros((0, 32), np.float32)


def load_encoders(model=None, saved_model=None, sliding=True):
    """Loads the encoders of a `.keras` model or of a SavedModel export directory (exactly one of the two).

    `sliding=False` makes `Encoders.sheet_at` embed every snippet alone (for comparisons; the default passes
    over whole strips where that is less work).

    Raises:
        RetrievalError: no model given, or the file cannot be loaded as a keras-asr model.
    """
    if (model is None) == (saved_model is None):
        raise RetrievalError("Give exactly one model: a .keras file (--model) or a SavedModel export (--saved-model).")
    if model is not None:
        return _keras_encoders(model, sliding)
    return _saved_model_encoders(saved_model)


def _keras_encoders(path, sliding=True):
    import keras

    from keras_asr.models.sliding_sheet_encoder import SlidingSheetEncoder
    from keras_asr.saving import load_model

    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise RetrievalError(f"No model file at {path}.")
    try:
        model = load_model(path)
    except Exception as e:  # keras raises many types for a broken or foreign file
        raise RetrievalError(f"Cannot load {path} as a keras-asr model: {e}") from e
    sheet_encoder, audio_encoder = model.sheet_encoder, model.audio_encoder
    attention = model.audio_tower.attention_model if model.attention else None
    return Encoders(
        sheet_encoder.predict_on_batch,
        audio_encoder.predict_on_batch,
        frames=model.frames,
        weights=[keras.ops.convert_to_numpy(w) for encoder in (sheet_encoder, audio_encoder) for w in encoder.weights],
        source={"model": path},
        attention=None if attention is None else attention.predict_on_batch,
        sliding=SlidingSheetEncoder(model) if sliding and SlidingSheetEncoder.supports(model) else None,
    )


def _saved_model_encoders(directory):
    import tensorflow as tf

    directory = os.path.abspath(directory)
    loaded = {}
    for name in ("sheet_encoder", "audio_encoder"):
        path = os.path.join(directory, name)
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise RetrievalError(
                f"No SavedModel at {path}: expected {directory} to hold audio_encoder/ and sheet_encoder/ "
                "as written by keras_asr.export_encoders."
            )
        try:
            loaded[name] = tf.saved_model.load(path)
        except Exception as e:
            raise RetrievalError(f"Cannot load the SavedModel at {path}: {e}") from e
    sheet_model, audio_model = loaded["sheet_encoder"], loaded["audio_encoder"]
    frames = audio_model.serve.concrete_functions[0].structured_input_signature[0][0].shape[2]
    # The closures keep the loaded objects alive: their functions use the objects' variables.
    return Encoders(
        lambda x: sheet_model.serve(tf.constant(x)).numpy(),
        lambda x: audio_model.serve(tf.constant(x)).numpy(),
        frames=frames,
        weights=[v.numpy() for model in (sheet_model, audio_model) for v in model.variables],
        source={"saved_model": directory},
    )
