from keras_asr.layers.attention import FrameAttention
from keras_asr.layers.cca import CCAProjection
