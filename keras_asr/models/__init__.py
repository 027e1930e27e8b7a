from keras_asr.models.encoders import AudioEncoder
from keras_asr.models.encoders import SheetEncoder
from keras_asr.models.retrieval_model import CONTEXTS
from keras_asr.models.retrieval_model import PRECISIONS
from keras_asr.models.retrieval_model import RetrievalModel
from keras_asr.models.retrieval_model import build_model
from keras_asr.models.retrieval_model import compile_model
from keras_asr.models.retrieval_model import resolve_context
