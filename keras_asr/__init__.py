"""keras-asr: tempo-invariant audio-sheet music retrieval in Keras 3.

The data flow, by module: `audio` (audio -> spectrogram) and `pages`, `staves`, `sheet` (score file -> pages ->
staff systems -> unrolled strip -> snippet), `data` (excerpt/snippet pairs), `models` (the two encoders),
`layers.cca` (the shared space), `losses`, `index` and `identification` (index -> ranked answer); `retrieval`
gathers the application's names.
"""

__version__ = "0.1.0"

from keras_asr import layers
from keras_asr import losses
from keras_asr import models
from keras_asr.losses import PairwiseRankingLoss
from keras_asr.models import build_model
from keras_asr.models import compile_model
from keras_asr.models import resolve_context
from keras_asr.pretrained import convert_original_params
from keras_asr.saving import export_encoders
from keras_asr.saving import load_model
