"""Tests of the conversion of the original Lasagne BL1-SC model.

The reference is an independent NumPy forward pass of the original network, written from the file's
documented layout (NCHW, cross-correlation, BatchNorm with inv_std, ELU, floor max-pooling, GAP, CCA, L2),
run on real pairs of the committed fixture corpus (engraved snippets, synthesized excerpts). The original
file is not part of the project: tests that need it look for `<repo>/../shared/pretrained/` (or
`$KERAS_ASR_ORIGINAL_PARAMS`) and skip without it; the others use a synthetic file of the same layout.
"""

import glob
import os
import pickle

import keras
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import keras_asr
from keras_asr import pretrained
from keras_asr.data import PairPool
from keras_asr.testing import fixture_root
from tfds_msmd.layout import read_piece

PARAMS_ENV = "KERAS_ASR_ORIGINAL_PARAMS"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PARAMS = os.path.join(REPO_ROOT, os.pardir, "shared", "pretrained", pretrained.ORIGINAL_PARAMS_FILE)
NUM_REFERENCE_PAIRS = 8  # the NumPy reference costs ~0.2 s per pair


def original_params_path():
    return os.environ.get(PARAMS_ENV) or os.path.normpath(DEFAULT_PARAMS)


needs_original = pytest.mark.skipif(
    not os.path.exists(original_params_path()),
    reason=f"The original parameter file is not at {original_params_path()} (it is not shipped with the "
    f"project: put shared/pretrained/ beside the repository, or set ${PARAMS_ENV}).",
)


# -- an independent NumPy forward pass of the original network (float64, NCHW as in Lasagne) -----------------


def _conv(x, w):
    """Cross-correlation with zero 'same' padding: x (B, C, H, W), w (O, C, k, k)."""
    pad = w.shape[-1] // 2
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(x, w.shape[-2:], axis=(2, 3))  # (B, C, H, W, k, k)
    return np.einsum("bchwij,ocij->bohw", windows, w, optimize=True)


def _pathway(x, params):
    """One pathway: 45 arrays, 9 blocks of [W, beta, gamma, mean, inv_std]."""
    x = x[:, None].astype(np.float64)  # (B, 1, H, W)
    for block in range(9):
        w, beta, gamma, mean, inv_std = (p.astype(np.float64) for p in params[5 * block:5 * block + 5])
        x = _conv(x, w)
        x = (x - mean[:, None, None]) * (gamma * inv_std)[:, None, None] + beta[:, None, None]
        if block < 8:
            x = np.where(x > 0, x, np.expm1(np.minimum(x, 0)))  # ELU
        if block % 2 == 1 and block < 8:  # 2x2 max-pooling, odd sizes floored
            b, c, h, w_ = x.shape
            x = x[:, :, :h // 2 * 2, :w_ // 2 * 2].reshape(b, c, h // 2, 2, w_ // 2, 2).max(axis=(3, 5))
    return x.mean(axis=(2, 3))  # global average pooling


def reference_embeddings(params, sheet, spectrogram):
    """(sheet pre-CCA, audio pre-CCA, sheet embedding, audio embedding) of the original network."""
    u, v, mean1, mean2 = (p.astype(np.float64) for p in params[90:94])
    h1, h2 = _pathway(sheet, params[:45]), _pathway(spectrogram, params[45:90])
    e1, e2 = (h1 - mean1) @ u, (h2 - mean2) @ v
    normalize = lambda e: e / np.linalg.norm(e, axis=1, keepdims=True)  # noqa: E731
    return h1, h2, normalize(e1), normalize(e2)


# -- inputs and parameter files -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fixture_pool():
    records = [r for piece in sorted(glob.glob(os.path.join(fixture_root(), "*", ""))) for r in read_piece(piece)]
    return PairPool(records)


@pytest.fixture(scope="module")
def real_pairs(fixture_pool):
    """Evenly spaced real pairs of the fixture, un-augmented (as evaluation pairs)."""
    return fixture_pool.batch(fixture_pool.eval_indices(NUM_REFERENCE_PAIRS), context=42)


def synthetic_params(seed=0):
    """Random arrays in the original layout, with plausible scales (dead BN channels included)."""
    rng = np.random.default_rng(seed)
    params = []
    for name, shape in pretrained.original_layout():
        kind = name.split()[-1]
        if kind == "W":
            value = rng.normal(0, 1 / np.sqrt(np.prod(shape[1:])), shape)
        elif kind == "gamma":
            value = rng.uniform(0.7, 1.3, shape)
            value[:2] = 0.01  # the dead channels below: gamma * inv_std = 1
        elif kind == "inv_std":
            value = rng.uniform(0.7, 1.3, shape)
            value[:2] = 1 / np.sqrt(pretrained.LASAGNE_BN_EPSILON)  # dead channels: variance 0
        elif kind in ("U", "V"):
            value = rng.normal(0, 3, shape)
        elif kind.startswith("S"):
            a = rng.normal(0, 0.1, shape)
            value = a @ a.T if kind != "S12" else a
        else:  # beta, mean, mean1, mean2
            value = rng.normal(0, 0.1, shape)
        params.append(value.astype(np.float32))
    return params


def _write(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
    return str(path)


@pytest.fixture(scope="module")
def synthetic_file(tmp_path_factory):
    params = synthetic_params()
    return params, _write(tmp_path_factory.mktemp("params") / "synthetic.pkl", params)


@pytest.fixture(scope="module")
def synthetic_model(synthetic_file):
    return pretrained.convert_original_params(synthetic_file[1])


@pytest.fixture(scope="module")
def original():
    path = original_params_path()
    return pretrained.load_original_params(path), pretrained.convert_original_params(path)


def _predict(model, pairs):
    sheet = keras.ops.convert_to_numpy(model.sheet_encoder(pairs["sheet"]))
    audio = keras.ops.convert_to_numpy(model.audio_encoder(pairs["spectrogram"]))
    return sheet, audio


def _assert_matches_reference(model, params, pairs):
    h1, h2, e1, e2 = reference_embeddings(params, pairs["sheet"], pairs["spectrogram"])
    k1 = keras.ops.convert_to_numpy(model.sheet_tower(pairs["sheet"]))
    k2 = keras.ops.convert_to_numpy(model.audio_tower(pairs["spectrogram"]))
    # Pre-CCA features relative to their scale, then the unit-norm embeddings used for retrieval.
    np.testing.assert_allclose(k1, h1, rtol=0, atol=1e-5 * np.abs(h1).max())
    np.testing.assert_allclose(k2, h2, rtol=0, atol=1e-5 * np.abs(h2).max())
    sheet, audio = _predict(model, pairs)
    np.testing.assert_allclose(sheet, e1, rtol=0, atol=1e-4)
    np.testing.assert_allclose(audio, e2, rtol=0, atol=1e-4)


# -- the original model ---------------------------------------------------------------------------------------


@needs_original
def test_original_matches_numpy_reference(original, real_pairs):
    params, model = original
    _assert_matches_reference(model, params, real_pairs)


@needs_original
def test_original_retrieves_fixture_pairs(original, fixture_pool):
    # A check that does not share the reference's reading of the file: the converted model must retrieve
    # the right snippet for real excerpts far better than chance.
    _, model = original
    pairs = fixture_pool.batch(np.arange(len(fixture_pool)), context=42)
    # Performances of a piece share their snippets: rank each excerpt among the distinct snippets.
    keys = [(fixture_pool.example_piece[e], x) for e, x in zip(fixture_pool.pair_example, fixture_pool.pair_x)]
    distinct = sorted(set(keys))
    true = np.array([distinct.index(k) for k in keys])
    first = np.array([keys.index(k) for k in distinct])
    sheet = keras.ops.convert_to_numpy(model.sheet_encoder(pairs["sheet"][first]))
    audio = keras.ops.convert_to_numpy(model.audio_encoder(pairs["spectrogram"]))
    dist = 1 - audio @ sheet.T
    ranks = (dist < dist[np.arange(len(true)), true][:, None]).sum(axis=1) + 1
    chance = np.mean(1 / np.arange(1, len(distinct) + 1))
    assert np.mean(1 / ranks) > 2 * chance, (
        f"MRR {np.mean(1 / ranks):.3f} on {len(ranks)} excerpts x {len(distinct)} snippets (chance {chance:.3f})"
    )


@needs_original
def test_original_cca_statistics(original):
    params, model = original
    for name, attribute in (("U", "projection_x"), ("V", "projection_y"), ("mean1", "mean_x"),
                            ("mean2", "mean_y"), ("S12", "moving_cov_xy"), ("S11", "moving_cov_xx"),
                            ("S22", "moving_cov_yy")):
        index = [n for n, _ in pretrained.original_layout()].index(f"cca {name}")
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(getattr(model.cca, attribute)), params[index])


# -- conversion without the original file ---------------------------------------------------------------------


def test_synthetic_matches_numpy_reference(synthetic_file, synthetic_model, real_pairs):
    _assert_matches_reference(synthetic_model, synthetic_file[0], real_pairs)


def test_batch_norm_variance_of_dead_channels(synthetic_file, synthetic_model):
    params = synthetic_file[0]
    bn = synthetic_model.sheet_tower.get_layer("sheet_block1a_bn")
    variance = keras.ops.convert_to_numpy(bn.moving_variance)
    # inv_std = 1 / sqrt(eps) means a variance of 0; Keras adds eps back.
    np.testing.assert_allclose(variance[:2], 0, atol=1e-10)
    np.testing.assert_allclose(1 / np.sqrt(variance + bn.epsilon), params[4], rtol=1e-5)


def test_keras_round_trip(synthetic_model, real_pairs, tmp_path):
    model = synthetic_model
    model.save(tmp_path / "converted.keras")
    restored = keras_asr.load_model(str(tmp_path / "converted.keras"))
    for before, after in zip(_predict(model, real_pairs), _predict(restored, real_pairs)):
        np.testing.assert_allclose(after, before, atol=1e-6)
    refined = restored.cca.refine(*(np.random.default_rng(0).normal(size=(100, 32)) for _ in range(2)))
    assert refined.shape == (32,)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="exports SavedModels under TensorFlow")
def test_export_encoders(synthetic_model, real_pairs, tmp_path):
    import tensorflow as tf

    model = synthetic_model
    paths = keras_asr.export_encoders(model, str(tmp_path))
    expected = dict(zip(("sheet_encoder", "audio_encoder"), _predict(model, real_pairs)))
    inputs = {"sheet_encoder": real_pairs["sheet"], "audio_encoder": real_pairs["spectrogram"]}
    for name, directory in paths.items():
        loaded = tf.saved_model.load(directory)  # kept referenced: its functions use its variables
        served = loaded.serve(tf.constant(inputs[name])).numpy()
        np.testing.assert_allclose(served, expected[name], atol=1e-5)


@pytest.mark.single_backend
def test_cli_writes_keras_file(synthetic_file, tmp_path, capsys):
    out = str(tmp_path / "bl1.keras")
    pretrained.main([synthetic_file[1], out])
    assert os.path.exists(out) and "BL1-SC" in capsys.readouterr().out
    assert keras_asr.load_model(out).head == "gap"


# -- files that are not the original model --------------------------------------------------------------------


@pytest.mark.single_backend
def test_layout_matches_file_description():
    layout = pretrained.original_layout()
    assert len(layout) == 97
    assert layout[0] == ("sheet_block1a W", (24, 1, 3, 3))
    assert layout[40] == ("sheet_proj W", (32, 96, 1, 1))
    assert layout[45] == ("audio_block1a W", (24, 1, 3, 3))
    cca = ("U", "V", "mean1", "mean2", "S12", "S11", "S22")
    assert [name for name, _ in layout[90:]] == [f"cca {n}" for n in cca]


@pytest.mark.single_backend
def test_wrong_count_is_reported(tmp_path):
    path = _write(tmp_path / "short.pkl", synthetic_params()[:95])
    with pytest.raises(pretrained.OriginalParamsError, match=r"holds 95 arrays; the original BL1-SC model has 97"):
        pretrained.convert_original_params(path)


@pytest.mark.single_backend
def test_wrong_shapes_are_all_reported(tmp_path):
    params = synthetic_params()
    params[40] = np.zeros((32, 96, 3, 3), np.float32)  # a 3x3 head instead of 1x1
    params[91] = np.zeros((32, 64), np.float32)
    path = _write(tmp_path / "shapes.pkl", params)
    with pytest.raises(pretrained.OriginalParamsError) as info:
        pretrained.convert_original_params(path)
    message = str(info.value)
    assert "array 40 (sheet_proj W) has shape (32, 96, 3, 3); expected (32, 96, 1, 1)" in message
    assert "array 91 (cca V) has shape (32, 64); expected (32, 32)" in message


@pytest.mark.single_backend
@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a pickle at all", "is not a readable pickle"),
        (pickle.dumps({"W": np.zeros(3)}), "holds a dict"),
        (pickle.dumps([1.0] * 97), r"array 0 \(sheet_block1a W\) is float"),
        # A pickle that would import something other than NumPy arrays is refused before it runs.
        (pickle.dumps(os.path.join), "references posixpath.join"),
    ],
)
def test_wrong_content_is_reported(tmp_path, content, message):
    path = tmp_path / "bad.pkl"
    path.write_bytes(content)
    with pytest.raises(pretrained.OriginalParamsError, match=message):
        pretrained.load_original_params(str(path))


@pytest.mark.single_backend
def test_bad_values_are_reported(tmp_path):
    params = synthetic_params()
    params[4] = -params[4]
    params[92] = np.full(32, np.nan, np.float32)
    path = _write(tmp_path / "values.pkl", params)
    with pytest.raises(pretrained.OriginalParamsError, match=r"(?s)array 4 \(sheet_block1a inv_std\).*array 92"):
        pretrained.load_original_params(path)


@pytest.mark.single_backend
def test_other_architectures_are_refused():
    model = keras_asr.build_model(context="SC", head="dense")
    with pytest.raises(pretrained.OriginalParamsError, match="head='gap'"):
        pretrained.set_original_params(model, synthetic_params())


@pytest.mark.single_backend
def test_missing_file():
    with pytest.raises(FileNotFoundError):
        pretrained.load_original_params(os.path.join(REPO_ROOT, "no_such_params.pkl"))
