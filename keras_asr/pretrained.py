"""Loads the original MSMD-trained model (Theano/Lasagne) into a keras-asr BL1-SC model.

The public repository of the paper (CPJKU/audio_sheet_retrieval, `tutorials/`) ships one trained model,
`params_all_split_mutopia_full_aug.pkl`: a Python 2 pickle of the 97 parameter arrays of the BL1 network
with a short context (SC, 42 frames), trained on MSMD with full augmentation. Its layout:

- arrays 0-44: the sheet pathway, 45-89: the audio pathway. Each is 9 blocks of
  `[W (out, in, kh, kw), beta, gamma, mean, inv_std]`: eight 3x3 conv blocks (24, 24, 48, 48, 96, 96, 96, 96
  filters, 2x2 max-pooling after every second one) and the 1x1 conv to 32 with its BatchNorm (GAP follows);
- arrays 90-96: the CCA layer, `U, V, mean1, mean2, S12, S11, S22` (view 1 = sheet, view 2 = audio).

Lasagne's convolutions are cross-correlations like Keras' (no kernel flip), so a kernel only needs its axes
moved to `(kh, kw, in, out)`. Lasagne stores BatchNorm's `inv_std = 1 / sqrt(var + eps)` with eps = 1e-4,
the epsilon of keras-asr's BatchNormalization layers, so `moving_variance = 1 / inv_std**2 - eps`.

The file's pickle is read with an unpickler that only admits NumPy arrays (a pickle can otherwise run code).

Example:

```python
model = keras_asr.convert_original_params("params_all_split_mutopia_full_aug.pkl")
query = model.audio_encoder.predict(excerpts)  # (n, 92, 42) -> (n, 32), unit norm
model.save("bl1_sc_msmd.keras")
```

or from a shell: `python -m keras_asr.pretrained params_all_split_mutopia_full_aug.pkl bl1_sc_msmd.keras`.
"""

import importlib
import pickle

import numpy as np

from keras_asr.models.encoders import EMBEDDING_DIM
from keras_asr.models.retrieval_model import build_model

ORIGINAL_PARAMS_FILE = "params_all_split_mutopia_full_aug.pkl"
# Lasagne's BatchNormLayer default; keras-asr's conv blocks use the same (keras_asr.models.encoders).
LASAGNE_BN_EPSILON = 1e-4
# (block name in keras-asr, input channels, output channels, kernel size) of one pathway, in file order.
_BLOCKS = (
    ("block1a", 1, 24, 3),
    ("block1b", 24, 24, 3),
    ("block2a", 24, 48, 3),
    ("block2b", 48, 48, 3),
    ("block3a", 48, 96, 3),
    ("block3b", 96, 96, 3),
    ("block4a", 96, 96, 3),
    ("block4b", 96, 96, 3),
    ("proj", 96, EMBEDDING_DIM, 1),
)
_BN_PARAMS = ("beta", "gamma", "mean", "inv_std")  # Lasagne BatchNormLayer's parameter order
_CCA_PARAMS = (  # Lasagne CCALayer's parameter order, and where each goes in keras-asr's CCAProjection
    ("U", "projection_x"),
    ("V", "projection_y"),
    ("mean1", "mean_x"),
    ("mean2", "mean_y"),
    ("S12", "moving_cov_xy"),
    ("S11", "moving_cov_xx"),
    ("S22", "moving_cov_yy"),
)
# What a pickle of NumPy arrays references, and where to find it now (numpy 2 moved numpy.core to
# numpy._core; Python 3 writes the raw bytes of protocol-2 array pickles through _codecs.encode).
_CORE = ("numpy._core.multiarray", "numpy.core.multiarray")
_NUMERIC = ("numpy._core.numeric", "numpy.core.numeric")
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _CORE,
    ("numpy._core.multiarray", "_reconstruct"): _CORE,
    ("numpy.core.numeric", "_frombuffer"): _NUMERIC,
    ("numpy._core.numeric", "_frombuffer"): _NUMERIC,
    ("numpy", "ndarray"): ("numpy",),
    ("numpy", "dtype"): ("numpy",),
    ("_codecs", "encode"): ("_codecs",),
}


class OriginalParamsError(ValueError):
    """Raised when a file is not the original BL1-SC parameter file; the message says what does not fit."""


def original_layout():
    """The names and shapes of the 97 arrays of the original BL1-SC parameter file, in file order.

    Returns:
        A list of `(name, shape)`, e.g. `("sheet_block1a W", (24, 1, 3, 3))`, `("cca U", (32, 32))`.
    """
    layout = []
    for pathway in ("sheet", "audio"):
        for block, c_in, c_out, k in _BLOCKS:
            layout.append((f"{pathway}_{block} W", (c_out, c_in, k, k)))
            layout.extend((f"{pathway}_{block} {p}", (c_out,)) for p in _BN_PARAMS)
    for name, _ in _CCA_PARAMS:
        shape = (EMBEDDING_DIM,) if name.startswith("mean") else (EMBEDDING_DIM, EMBEDDING_DIM)
        layout.append((f"cca {name}", shape))
    return layout


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles NumPy arrays and nothing else: any other global is refused rather than imported."""

    def find_class(self, module, name):
        candidates = _ALLOWED_GLOBALS.get((module, name))
        if candidates is None:
            raise OriginalParamsError(
                f"the pickle references {module}.{name}; the original parameter file holds only NumPy arrays, "
                "and other objects are not loaded (unpickling them could run arbitrary code)."
            )
        for candidate in candidates:
            try:
                return getattr(importlib.import_module(candidate), name)
            except (ImportError, AttributeError):
                continue
        raise OriginalParamsError(f"this NumPy cannot provide {module}.{name} to read the pickle.")


def check_original_params(params, source="the parameter list"):
    """Checks a list of arrays against the original BL1-SC layout (`original_layout`).

    Args:
        params: the unpickled object.
        source: how to name it in error messages (e.g. the file path).

    Returns:
        The arrays as a list of float32 NumPy arrays.

    Raises:
        OriginalParamsError: listing every array of the wrong type, shape or value, or the count mismatch.
    """
    layout = original_layout()
    if not isinstance(params, (list, tuple)):
        raise OriginalParamsError(
            f"{source} holds a {type(params).__name__}; the original parameter file is a pickled list of "
            f"{len(layout)} NumPy arrays (lasagne.layers.get_all_param_values)."
        )
    if len(params) != len(layout):
        raise OriginalParamsError(
            f"{source} holds {len(params)} arrays; the original BL1-SC model has {len(layout)}: 45 for the "
            "sheet pathway and 45 for the audio pathway (9 blocks of W, beta, gamma, mean, inv_std) and 7 for "
            "the CCA layer (U, V, mean1, mean2, S12, S11, S22). Another architecture (BL2, attention, a "
            "longer context) cannot be loaded into BL1-SC."
        )
    problems, arrays = [], []
    for i, (value, (name, shape)) in enumerate(zip(params, layout)):
        if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            problems.append(f"array {i} ({name}) is {kind}; expected a float array of shape {shape}")
        elif value.shape != shape:
            problems.append(f"array {i} ({name}) has shape {value.shape}; expected {shape}")
        elif not np.all(np.isfinite(value)):
            problems.append(f"array {i} ({name}) contains NaN or infinite values")
        elif name.endswith("inv_std") and not np.all(value > 0):
            problems.append(f"array {i} ({name}) has values <= 0; a BatchNorm inv_std must be positive")
        else:
            arrays.append(np.asarray(value, np.float32))
    if problems:
        shown = "\n  ".join(problems[:12])
        if len(problems) > 12:
            shown += f"\n  ... and {len(problems) - 12} more"
        raise OriginalParamsError(
            f"{source} does not match the original BL1-SC layout (see keras_asr.pretrained.original_layout):"
            f"\n  {shown}"
        )
    return arrays


def load_original_params(path):
    """Reads and checks the original parameter file (a Python 2 pickle of 97 float32 arrays).

    Args:
        path: path of the `.pkl` file.

    Returns:
        The 97 arrays, in file order (see `original_layout`).

    Raises:
        FileNotFoundError: no file at `path`.
        OriginalParamsError: the file is not a pickle of arrays, or its arrays do not fit the layout.
    """
    with open(path, "rb") as f:
        try:
            # latin1: the file was written by Python 2, whose NumPy pickles raw bytes as str.
            params = _ArrayUnpickler(f, encoding="latin1").load()
        except OriginalParamsError as e:
            raise OriginalParamsError(f"{path}: {e}") from None
        except Exception as e:  # a truncated file or not a pickle at all
            raise OriginalParamsError(
                f"{path} is not a readable pickle ({type(e).__name__}: {e}); the original parameter file is a "
                "pickled list of NumPy arrays."
            ) from e
    return check_original_params(params, source=str(path))


def _batch_norm_variance(inv_std, epsilon):
    # In float64: 1 / inv_std**2 and epsilon are close for dead channels (inv_std = 1 / sqrt(eps) = 100).
    return (1.0 / np.square(inv_std.astype(np.float64)) - epsilon).astype(np.float32)


def _assign(variable, value, label):
    if tuple(variable.shape) != value.shape:
        raise OriginalParamsError(
            f"{label}: the model's {variable.path} has shape {tuple(variable.shape)}; the converted array "
            f"has {value.shape}."
        )
    variable.assign(np.array(value, dtype=variable.dtype))  # a NumPy copy: no buffer shared across variables


def set_original_params(model, params):
    """Writes the original BL1-SC parameters into a keras-asr model built as BL1-SC.

    Args:
        model: a `RetrievalModel` from `build_model(context="SC", attention=False, head="gap")`.
        params: the 97 arrays (`load_original_params`); they are checked again.

    Returns:
        `model`, with all weights, BatchNorm statistics and CCA statistics set.
    """
    if (model.frames, model.attention, model.head) != (42, False, "gap"):
        raise OriginalParamsError(
            "The original parameters are those of BL1-SC: build the model with context='SC', attention=False, "
            f"head='gap' (got frames={model.frames}, attention={model.attention}, head={model.head!r})."
        )
    params = check_original_params(params)
    it = iter(params)
    for tower, pathway in ((model.sheet_tower, "sheet"), (model.audio_tower, "audio")):
        for block, *_ in _BLOCKS:
            name = f"{pathway}_{block}"
            conv, bn = tower.get_layer(f"{name}_conv"), tower.get_layer(f"{name}_bn")
            if abs(bn.epsilon - LASAGNE_BN_EPSILON) > 1e-12:
                raise OriginalParamsError(
                    f"{bn.name} has epsilon {bn.epsilon}; the original uses {LASAGNE_BN_EPSILON}."
                )
            w, beta, gamma, mean, inv_std = (next(it) for _ in range(5))
            # (out, in, kh, kw) -> (kh, kw, in, out); both frameworks cross-correlate, so no flip.
            _assign(conv.kernel, w.transpose(2, 3, 1, 0), name)
            _assign(bn.gamma, gamma, name)
            _assign(bn.beta, beta, name)
            _assign(bn.moving_mean, mean, name)
            _assign(bn.moving_variance, _batch_norm_variance(inv_std, bn.epsilon), name)
    for (name, attribute), value in zip(_CCA_PARAMS, it):
        _assign(getattr(model.cca, attribute), value, f"cca {name}")
    return model


def convert_original_params(path, **kwargs):
    """Builds keras-asr's BL1-SC model and loads the original MSMD-trained parameters into it.

    The result behaves like any trained keras-asr model: `model.audio_encoder` / `model.sheet_encoder`
    embed one modality, `model.cca.refine` refits its CCA, `model.save("m.keras")` and
    `keras_asr.export_encoders` work as usual.

    Args:
        path: the original parameter file (`params_all_split_mutopia_full_aug.pkl`).
        **kwargs: further `RetrievalModel` arguments (e.g. `weight_decay`, `cca_regularization`) for
            fine-tuning; they do not change inference.

    Returns:
        A `RetrievalModel` (uncompiled) with the original weights and CCA statistics.

    Raises:
        OriginalParamsError: when the file does not fit the original layout; nothing is built then.
    """
    params = load_original_params(path)
    kwargs.setdefault("name", "bl1_sc_msmd")
    model = build_model(context="SC", attention=False, head="gap", **kwargs)
    return set_original_params(model, params)


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(
        description="Convert the original MSMD-trained BL1-SC model (Lasagne .pkl) to a keras-asr .keras file."
    )
    parser.add_argument("params", help=f"the original parameter file ({ORIGINAL_PARAMS_FILE})")
    parser.add_argument("output", help="the .keras file to write")
    args = parser.parse_args(argv)
    if not args.output.endswith(".keras"):
        parser.error(f"the output must be a .keras file; got {args.output!r}.")
    try:
        model = convert_original_params(args.params)
    except (OriginalParamsError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    from keras_asr import saving

    saving.save_model(model, args.output)  # atomic: an interrupted convert leaves no half file
    print(f"{args.output}: BL1-SC, {model.count_params()} parameters, converted from {args.params}")


if __name__ == "__main__":
    main()
