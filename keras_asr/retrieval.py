"""The retrieval application: index a score collection or a set of recordings, identify a recording, locate a
snippet of sheet music in recordings.

This module is the application's front door: it keeps the index folder wrappers (`save_index`, `load_index`:
an index with its collection and the encoders to query it with) and gathers the names of the modules that do
the work, so that `retrieval.identify` and the rest read as before:

- `encoding`: the model's embedding functions (`Encoders`, `load_encoders`) and `RetrievalError`;
- `library`: the sheet side, a score collection into a sheet index (`index_scores`, `add_score`) and a score
  region into queries (`sheet_queries`);
- `recordings`: the audio side, recordings into checked spectrograms (`load_spectrogram`) and into an audio index
  (`index_recordings`);
- `identification`: the queries, `identify` (which piece, and where) and `locate` (where a snippet sounds);
- `plots`: the query's figure and video (`plot_identification`, `follow_video`), imported when first used.

Built on `sheet` (pages -> snippets), `audio` (recording -> spectrogram) and `index` (search and the piece
vote of SPEC: evenly spaced excerpts of a recording each retrieve their 25 nearest snippets, pieces are ranked
by votes). An index directory holds a `SnippetIndex` and its collection (`index_folder.read_collection`): the
model files that made it and the score file of every piece, so that a query needs only the index and `--plot`
can redraw the pages.

Results count pages and systems from 1, as printed scores do; the index itself stores them from 0, as
`sheet.UnrolledScore` does.

Example:

```python
encoders = load_encoders(model="bl1_sc_msmd.keras")
index, sources, skipped = index_scores(encoders, ["bwv269.musicxml", "op6_2.pdf", "page.png"])
save_index(index, "library.index", encoders, sources)
index, collection, encoders = load_index("library.index")
result = identify(index, encoders, load_spectrogram("take1.flac", encoders.frames))
result["pieces"][0]  # {"piece": "bwv269", "votes": 1873}
```
"""

from keras_asr import index as index_lib
from keras_asr.encoding import BATCH_SIZE  # noqa: F401 (the names below are this module's public API)
from keras_asr.encoding import Encoders  # noqa: F401
from keras_asr.encoding import RetrievalError
from keras_asr.encoding import load_encoders
from keras_asr.identification import CANDIDATES  # noqa: F401
from keras_asr.identification import DENSE_ROWS  # noqa: F401
from keras_asr.identification import NO_MATCH_Z  # noqa: F401
from keras_asr.identification import SMOOTH_EXCERPTS  # noqa: F401
from keras_asr.identification import embed_excerpts  # noqa: F401
from keras_asr.identification import identify  # noqa: F401
from keras_asr.identification import locate  # noqa: F401
from keras_asr.identification import match_excerpts  # noqa: F401
from keras_asr.library import REFERENCE_STAFF_SPACE  # noqa: F401
from keras_asr.library import add_score  # noqa: F401
from keras_asr.library import index_scores  # noqa: F401
from keras_asr.library import sheet_queries  # noqa: F401
from keras_asr.recordings import BAND_SILENCE  # noqa: F401
from keras_asr.recordings import DEFAULT_AUDIO_HOP  # noqa: F401
from keras_asr.recordings import SILENCE_PEAK  # noqa: F401
from keras_asr.recordings import excerpt_starts  # noqa: F401
from keras_asr.recordings import index_recordings  # noqa: F401
from keras_asr.recordings import load_spectrogram  # noqa: F401

COLLECTION_FILE = index_lib.COLLECTION_FILE  # kept for callers; the folder's I/O is in index_folder.py
SHEET_COLUMNS = index_lib.KINDS["sheet"][0]
AUDIO_COLUMNS = index_lib.KINDS["audio"][0]
# Drawn with matplotlib, which `plots` sets to its file backend on import: loaded when first asked for, so that
# importing this module leaves a caller's matplotlib as it is.
_PLOTS = ("plot_identification", "follow_video")


def save_index(index, directory, encoders, sources=None, overwrite=False, **settings):
    """Writes `index` with its collection (model source, score or recording files, settings), atomically.

    See `index.SnippetIndex.save` (the folder's I/O and its checks live in `keras_asr.index_folder`).
    """
    collection = {"model": encoders.source, "sources": sources or {}, **settings}
    index.save(directory, collection=collection, overwrite=overwrite)


def load_index(directory, model=None, saved_model=None, kind=None):
    """Loads an index directory and the encoders to query it with.

    Args:
        directory: an index written by `save_index` (or `SnippetIndex.save`, then a model must be given).
        model, saved_model: the model to query with; by default the one recorded in the index.
        kind: "sheet" or "audio": the kind of index the caller needs.

    Returns:
        (index, collection dict, encoders).

    Raises:
        index.NotAnIndexError: not an index, or an index of the other kind.
        index.DamagedIndexError: the index's files are incomplete or disagree.
        RetrievalError: no model to query it with.
        index.ModelMismatchError: the model is not the one that built the index.
        index.EmptyIndexError: the index holds no embeddings.
    """
    collection = index_lib.read_collection(directory)
    if model is None and saved_model is None:
        recorded = collection.get("model")
        if not recorded:
            raise RetrievalError(f"{directory} does not record its model: give --model or --saved-model.")
        model, saved_model = recorded.get("model"), recorded.get("saved_model")
    encoders = load_encoders(model, saved_model)
    index, collection = index_lib.load_index(directory, encoders.model_id, kind=kind)
    return index, collection, encoders


def __getattr__(name):
    if name in _PLOTS:
        from keras_asr import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
