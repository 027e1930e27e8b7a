import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_asr
from keras_asr import build_model
from keras_asr.models.retrieval_model import RetrievalModel
from keras_asr.models.retrieval_model import resolve_context
from keras_asr.testing import real_pairs


def test_contexts():
    contexts = ("SC", "MC", "LC", "lc", 42, 168, 16, 64)
    assert [resolve_context(c) for c in contexts] == [42, 84, 168, 168, 42, 168, 16, 64]
    with pytest.raises(ValueError, match="Unknown context 'XL'"):
        resolve_context("XL")
    with pytest.raises(ValueError, match="not a multiple of 16"):
        resolve_context(50)
    with pytest.raises(ValueError, match="not a multiple of 16"):
        resolve_context(8)
    with pytest.raises(ValueError, match="int number of frames"):
        resolve_context(4.2)


def test_inputs_outputs_and_encoders():
    model = keras_asr.build_model(context=16, attention=True)
    assert set(model.input) == {"spectrogram", "sheet"}
    assert model.input["spectrogram"].shape == (None, 92, 16)
    assert model.input["sheet"].shape == (None, 80, 100)
    pairs = real_pairs(8, 16)
    out = model.predict(pairs, verbose=0)
    for name in ("sheet_embedding", "audio_embedding"):
        assert out[name].shape == (8, 32)
        np.testing.assert_allclose(np.linalg.norm(out[name], axis=1), 1.0, rtol=1e-5)
    # The stand-alone encoders give the joint model's embeddings.
    np.testing.assert_allclose(model.audio_encoder.predict(pairs["spectrogram"], verbose=0), out["audio_embedding"],
                               atol=1e-5)
    np.testing.assert_allclose(model.sheet_encoder.predict(pairs["sheet"], verbose=0), out["sheet_embedding"],
                               atol=1e-5)


def test_fit_trains_through_the_cca_and_updates_its_statistics():
    model = keras_asr.compile_model(keras_asr.build_model(context=16))
    pairs = real_pairs(200, 16)
    kernel_before = keras.ops.convert_to_numpy(model.get_layer("audio_tower").get_layer("audio_block1a_conv").kernel)
    mean_before = keras.ops.convert_to_numpy(model.cca.mean_y)
    history = model.fit(pairs, batch_size=100, epochs=2, shuffle=False, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][1] < history.history["loss"][0]
    kernel_after = keras.ops.convert_to_numpy(model.get_layer("audio_tower").get_layer("audio_block1a_conv").kernel)
    assert np.abs(kernel_after - kernel_before).max() > 0
    assert np.abs(keras.ops.convert_to_numpy(model.cca.mean_y) - mean_before).max() > 0
    # ValueError under JAX and PyTorch; TensorFlow checks in the graph (InvalidArgumentError).
    with pytest.raises(Exception, match="well above 64 pairs"):
        model.fit(real_pairs(40, 16), batch_size=40, epochs=1, verbose=0)


def test_keras_file_round_trip(tmp_path):
    model = keras_asr.compile_model(keras_asr.build_model(context=16, attention=True, head="gap"))
    pairs = real_pairs(100, 16)
    model.fit(pairs, batch_size=100, epochs=1, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras_asr.load_model(path)
    assert isinstance(loaded, keras_asr.models.RetrievalModel)
    assert (loaded.frames, loaded.attention, loaded.head) == (16, True, "gap")
    expected = model.predict(pairs, verbose=0)
    got = loaded.predict(pairs, verbose=0)
    for name in expected:
        np.testing.assert_allclose(got[name], expected[name], atol=1e-5)
    np.testing.assert_allclose(
        loaded.audio_tower.attention_model.predict(pairs["spectrogram"], verbose=0),
        model.audio_tower.attention_model.predict(pairs["spectrogram"], verbose=0),
        atol=1e-6,
    )
    # The towers are saved as part of the config and rebuilt from it.
    config = model.get_config()
    assert config["audio_tower"]["config"]["frames"] == 16 and config["sheet_tower"]["config"]["head"] == "gap"
    assert RetrievalModel.from_config(config).count_params() == model.count_params()


def test_towers_are_arguments_and_saved_with_the_model(tmp_path):
    from keras_asr.models import AudioEncoder

    # A tower that is not one of the paper's: a small sheet pathway of plain Keras layers.
    snippet = keras.Input((80, 100))
    features = keras.layers.Dense(32)(keras.layers.Flatten()(keras.layers.AveragePooling1D(10)(snippet)))
    sheet_tower = keras.Model(snippet, features, name="sheet_tower")
    model = RetrievalModel(sheet_tower=sheet_tower, audio_tower=AudioEncoder(32, name="audio_tower"))
    assert (model.frames, model.attention, model.head) == (32, False, "dense")
    pairs = real_pairs(100, 32)
    keras_asr.compile_model(model).fit(pairs, batch_size=100, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras_asr.load_model(str(tmp_path / "m.keras"))
    assert loaded.sheet_tower.count_params() == sheet_tower.count_params() == 32 * 800 + 32
    for name, values in model.predict(pairs, verbose=0).items():
        np.testing.assert_allclose(loaded.predict(pairs, verbose=0)[name], values, atol=1e-5)


def test_a_model_saved_before_the_towers_were_arguments_loads(tmp_path):
    # Configs written by keras-asr 0.1 named the variant (context, attention, head), not the towers.
    old = {"name": "retrieval_model", "context": "SC", "attention": True, "head": "gap", "weight_decay": 1e-5,
           "cca_regularization": 1e-3, "cca_momentum": 0.99}
    model = RetrievalModel.from_config(old)
    assert (model.frames, model.attention, model.head) == (42, True, "gap")
    assert model.count_params() == build_model(context="SC", attention=True, head="gap").count_params()


EXPORT_CHECK = """
import sys, numpy as np, tensorflow as tf
data = np.load(sys.argv[2])
for name, key in (("audio_encoder", "spectrogram"), ("sheet_encoder", "sheet")):
    loaded = tf.saved_model.load(sys.argv[1] + "/" + name)  # keep a reference: it owns the variables
    served = loaded.serve(tf.constant(data[key])).numpy()
    np.testing.assert_allclose(served, data[name], atol=1e-5)
print("served ok")
"""


def test_saved_model_export_serves_the_same_embeddings(tmp_path):
    model = keras_asr.build_model(context=16, attention=True)
    pairs = real_pairs(100, 16)
    keras_asr.compile_model(model).fit(pairs, batch_size=100, epochs=1, verbose=0)
    expected = {
        "audio_encoder": model.audio_encoder.predict(pairs["spectrogram"][:5], verbose=0),
        "sheet_encoder": model.sheet_encoder.predict(pairs["sheet"][:5], verbose=0),
    }
    np.savez(tmp_path / "data.npz", spectrogram=pairs["spectrogram"][:5], sheet=pairs["sheet"][:5], **expected)
    export_dir = str(tmp_path / "export")
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    if keras.backend.backend() == "torch":
        # No SavedModel export under PyTorch: the documented path saves .keras and exports under TF.
        with pytest.raises(RuntimeError, match="KERAS_BACKEND=tensorflow python -m keras_asr.saving"):
            keras_asr.export_encoders(model, export_dir)
        model.save(str(tmp_path / "model.keras"))
        subprocess.run(
            [sys.executable, "-m", "keras_asr.saving", str(tmp_path / "model.keras"), export_dir],
            check=True, env=env, capture_output=True,
        )
    else:
        keras_asr.export_encoders(model, export_dir)
    # Served by TensorFlow alone, in a fresh process.
    result = subprocess.run(
        [sys.executable, "-c", EXPORT_CHECK, export_dir, str(tmp_path / "data.npz")],
        env=env, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "served ok" in result.stdout


def test_mixed_bfloat16_trains_with_a_float32_cca(tmp_path):
    model = keras_asr.compile_model(keras_asr.build_model(context=16, precision="mixed_bfloat16"))
    conv = model.get_layer("audio_tower").get_layer("audio_block1a_conv")
    assert (conv.compute_dtype, conv.kernel.dtype) == ("bfloat16", "float32")
    assert model.cca.compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the build left the global policy alone
    pairs = real_pairs(200, 16)
    mean_before = keras.ops.convert_to_numpy(model.cca.mean_y)
    history = model.fit(pairs, batch_size=100, epochs=2, shuffle=False, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][1] < history.history["loss"][0]
    # The moving statistics stay float32 and moved; the embeddings leave the model in float32.
    assert all(v.dtype == "float32" for v in model.cca.non_trainable_weights)
    assert np.abs(keras.ops.convert_to_numpy(model.cca.mean_y) - mean_before).max() > 0
    out = model.predict_on_batch({k: v[:100] for k, v in pairs.items()})
    assert keras.backend.standardize_dtype(out["audio_embedding"].dtype) == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(out["audio_embedding"])))
    with pytest.raises(ValueError, match="precision"):
        keras_asr.build_model(context=16, precision="float16")
    # The precision is saved with the model: a loaded model computes in bfloat16 again.
    model.save(path := str(tmp_path / "mixed.keras"))
    loaded = keras_asr.load_model(path)
    assert loaded.get_layer("audio_tower").get_layer("audio_block1a_conv").compute_dtype == "bfloat16"
    assert loaded.cca.compute_dtype == "float32" and keras.config.dtype_policy().name == "float32"


def test_a_model_of_another_front_end_is_refused_by_name(tmp_path):
    from keras_asr import geometry

    model = build_model(context=16)
    assert model.get_config()["front_end"] == geometry.FRONT_END
    other = {**geometry.FRONT_END, "bins": 128, "fps": 50}
    with pytest.raises(ValueError, match=r"fps 50 \(keras-asr: 20\), bins 128 \(keras-asr: 92\)"):
        RetrievalModel.from_config({**model.get_config(), "front_end": other})
