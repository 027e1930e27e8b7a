import pytest

import keras_asr
from keras_asr.models.flops import training_flops


@pytest.mark.single_backend
def test_training_flops_counted_from_layer_shapes():
    plain = training_flops(keras_asr.build_model(context="LC"))
    attention = training_flops(keras_asr.build_model(context="LC", attention=True))
    # 3x3 conv, 1 -> 24 channels over the 80 x 100 snippet: 2 * 9 * 24 FLOPs per output pixel.
    assert plain["layers"]["sheet_block1a_conv"] == (2 * 9 * 1 * 24 * 80 * 100, False)
    # Behind the attention weights, the audio trunk's first conv needs its input gradient too.
    assert plain["layers"]["audio_block1a_conv"][1] is False
    assert attention["layers"]["audio_block1a_conv"][1] is True
    assert attention["layers"]["attention_block1a_conv"][1] is False
    assert 2 * plain["forward"] < plain["training"] < 3 * plain["forward"]
    # The attention trunk roughly doubles the audio side: ~5.5 GFLOP per LC+AT pair, ~3.3 without.
    assert 5.4e9 < attention["training"] < 5.5e9
    assert 3.2e9 < plain["training"] < 3.3e9
