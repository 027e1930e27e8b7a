import keras
import numpy as np
import pytest

from keras_asr import build_model
from keras_asr import sources
from keras_asr import warm_start as warm_start_lib
from keras_asr.data import PairPool
from keras_asr.models import RetrievalModel
from keras_asr.testing import fixture_root


def _trained_looking(model, seed):
    """Every weight moved off its initial value, as training would, so that a copy can be told from a fresh one."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        value = keras.ops.convert_to_numpy(variable)
        variable.assign((value + rng.normal(0.0, 0.05, value.shape)).astype(value.dtype))
    return model


@pytest.fixture(scope="module")
def short_context():
    return _trained_looking(build_model(context=16), seed=1)


def _values(tower):
    return {layer.name: [keras.ops.convert_to_numpy(w) for w in layer.weights] for layer in tower.layers
            if layer.weights}


def test_a_long_context_attention_model_takes_the_short_models_sheet_tower_and_audio_convolutions(short_context):
    model = build_model(context=32, attention=True)
    fresh = _values(model.audio_tower)
    report = warm_start_lib.warm_start(model, short_context)

    source_sheet, sheet = _values(short_context.sheet_tower), _values(model.sheet_tower)
    assert sheet.keys() == source_sheet.keys()
    for name in sheet:
        for copied, original in zip(sheet[name], source_sheet[name]):
            np.testing.assert_array_equal(copied, original)
    source_audio, audio = _values(short_context.audio_tower), _values(model.audio_tower)
    for name in ("audio_block1a_conv", "audio_block4b_bn", "audio_proj_conv"):
        np.testing.assert_array_equal(audio[name][0], source_audio[name][0])
    # The dense head reads a wider feature map and the attention pathway is new: both as initialised.
    assert "audio_tower/audio_dense" in report.kept_fresh
    assert any(name.startswith("audio_tower/attention_") for name in report.kept_fresh)
    np.testing.assert_array_equal(audio["audio_dense"][0], fresh["audio_dense"][0])
    np.testing.assert_array_equal(audio["attention_scores"][0], fresh["attention_scores"][0])
    assert not report.cca_copied and "left as initialised" in report.summary()


def test_the_same_network_comes_over_whole_and_embeds_as_its_source(short_context):
    model = build_model(context=16)
    report = warm_start_lib.warm_start(model, short_context)
    assert report.kept_fresh == [] and report.cca_copied
    pairs = PairPool(sources.read_corpus(fixture_root())).batch(np.arange(0, 40, 10), 16)  # real excerpts
    for encoder, inputs in (("audio_encoder", pairs["spectrogram"]), ("sheet_encoder", pairs["sheet"])):
        np.testing.assert_allclose(getattr(model, encoder).predict(inputs, verbose=0),
                                   getattr(short_context, encoder).predict(inputs, verbose=0), atol=1e-5)


def test_towers_of_another_network_are_refused(short_context):
    def tower(shape, name):
        inputs = keras.Input(shape=shape)
        return keras.Model(inputs, keras.layers.Dense(32, name="other")(keras.layers.Flatten()(inputs)), name=name)

    other = RetrievalModel(tower((80, 100), "sheet_tower"), tower((92, 16), "audio_tower"))
    with pytest.raises(ValueError, match="No layer of the source model fits"):
        warm_start_lib.warm_start(other, short_context)
