"""Saving and loading `.keras` files (atomically, with checks) and exporting the encoders as SavedModels."""

import os
import zipfile

import keras

from keras_asr import atomic
from keras_asr.models.retrieval_model import RetrievalModel


def save_model(model, path):
    """`model.save(path)`, atomically: a kill or a full disk while saving leaves the previous file at `path`.

    Example:

    >>> save_model(keras_asr.build_model(context="SC"), "outputs/model.keras")
    """
    with atomic.written_beside(path, suffix=".keras") as temporary:
        model.save(temporary)


def load_model(path, compile=False):
    """Loads a `.keras` file saved by keras-asr on any backend.

    Models are loaded uncompiled by default: an optimizer saved under one backend (PyTorch) does not
    always load under another. Compile again with `keras_asr.compile_model`.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"No model file at {path!r}.")
    # Keras reports a truncated or foreign file as "File not found": say what is wrong instead.
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path!r} is not a .keras file (not a zip archive: truncated, or another format).")
    with zipfile.ZipFile(path) as archive:
        damaged = archive.testzip()
        if "config.json" not in archive.namelist() or damaged is not None:
            raise ValueError(f"{path!r} is a damaged .keras file ({damaged or 'no config.json'}).")
    model = keras.saving.load_model(path, compile=compile)
    if not isinstance(model, RetrievalModel):
        raise ValueError(f"{path!r} holds a {type(model).__name__}, not a keras-asr RetrievalModel.")
    return model


def export_encoders(model, directory):
    """Writes each encoder as a TensorFlow SavedModel: `directory/{audio,sheet}_encoder/`.

    Works under the TensorFlow and JAX backends. Under PyTorch, Keras cannot export a SavedModel;
    save the model (`model.save("m.keras")`) and run
    `KERAS_BACKEND=tensorflow python -m keras_asr.saving m.keras DIRECTORY`.

    Returns:
        A dict from encoder name to its SavedModel directory. Each serves one signature,
        `serve(inputs)`, returning the `(batch, 32)` unit-norm embeddings.
    """
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax"):
        raise RuntimeError(
            f"The {backend} backend cannot export a SavedModel. Save the model as .keras and run "
            "`KERAS_BACKEND=tensorflow python -m keras_asr.saving MODEL.keras DIRECTORY`."
        )
    paths = {}
    for name, encoder in (("audio_encoder", model.audio_encoder), ("sheet_encoder", model.sheet_encoder)):
        paths[name] = os.path.join(directory, name)
        encoder.export(paths[name], format="tf_saved_model", verbose=False)
    return paths


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Export the encoders of a keras-asr .keras model as SavedModels.")
    parser.add_argument("model", help="a .keras file")
    parser.add_argument("directory", help="output folder (audio_encoder/ and sheet_encoder/ are written in it)")
    args = parser.parse_args(argv)
    for name, path in export_encoders(load_model(args.model), args.directory).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
