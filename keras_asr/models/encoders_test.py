import keras
import numpy as np
import pytest

from keras_asr.models.encoders import AudioEncoder
from keras_asr.models.encoders import SheetEncoder
from keras_asr.models.retrieval_model import build_model

# Parameter counts (BN moving statistics and the CCA statistics included), worked out by hand:
#   conv trunk (1 input channel): 3x3 convs 24,24,48,48,96,96,96,96 + 4 x BN per conv = 328,920
#   BL2 sheet head: 1x1 conv 96->32 with bias (3,104) + Dense(960 -> 32) (30,752)
#   BL2 audio head: 1x1 conv 96->32 + BN (3,200) + Dense(5 * t * 32 -> 32), t = frames after 4 poolings
#   BL1 head: 1x1 conv 96->32 + BN = 3,200; attention: trunk + 1x1 conv 96 -> C with bias (97 C)
#   CCA: 2 means (64) + 5 matrices 32x32 (5,120)
PARAMETERS = {
    ("SC", False, "gap"): 669_424,
    ("SC", False, "dense"): 710_352,
    ("MC", False, "dense"): 725_712,
    ("LC", False, "dense"): 751_312,
    ("SC", True, "dense"): 1_043_346,
    ("MC", True, "dense"): 1_062_780,
    ("LC", True, "dense"): 1_096_528,
}


@pytest.mark.parametrize("variant", sorted(PARAMETERS))
def test_parameter_count_of_each_paper_variant(variant):
    context, attention, head = variant
    assert build_model(context, attention, head).count_params() == PARAMETERS[variant]


def layers_of(model, kind):
    return [layer for layer in model._flatten_layers() if isinstance(layer, kind)]


@pytest.mark.parametrize("head", ["dense", "gap"])
def test_layer_settings_follow_table_1(head):
    encoder = AudioEncoder(frames=42, attention=True, head=head)
    convs = layers_of(encoder, keras.layers.Conv2D)
    norms = layers_of(encoder, keras.layers.BatchNormalization)
    # Two trunks (audio, attention) of 8 3x3 convs, the 1x1 projection and the attention scores.
    assert [c.kernel_size for c in convs].count((3, 3)) == 16
    assert sorted(c.filters for c in convs if c.kernel_size == (3, 3)) == sorted([24, 24, 48, 48, 96, 96, 96, 96] * 2)
    assert all(not c.use_bias for c in convs if c.kernel_size == (3, 3))
    assert all(isinstance(c.kernel_initializer, keras.initializers.LecunUniform) for c in convs)
    assert all((n.epsilon, n.momentum) == (1e-4, 0.9) for n in norms)
    assert len(layers_of(encoder, keras.layers.MaxPooling2D)) == 8
    elus = [a for a in layers_of(encoder, keras.layers.Activation) if a.activation is keras.activations.elu]
    assert len(elus) == 16  # every 3x3 conv, and nothing after the linear 1x1 projection
    # L2 decay of 1e-5 on every parameter: one regularization term per trainable weight.
    encoder(np.zeros((1, 92, 42), "float32"))
    assert len(encoder.losses) == len(encoder.trainable_weights)
    squares = sum(float(np.sum(keras.ops.convert_to_numpy(w) ** 2)) for w in encoder.trainable_weights)
    total = sum(float(keras.ops.convert_to_numpy(loss)) for loss in encoder.losses)
    np.testing.assert_allclose(total, 1e-5 * squares, rtol=1e-4)
