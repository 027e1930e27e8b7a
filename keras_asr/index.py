"""A snippet index: L2-normalised embeddings, per-row metadata, cosine top-k search, piece voting.

The retrieval end of the data flow. A sheet-side index holds one embedding per sheet snippet (one every
`geometry.SNIPPET_HOP` px of unrolled score) with where it came from (piece, page, system, x on the page and on
the strip); an audio-side index holds one per audio excerpt (piece, recording, time in seconds). Embeddings are
unit vectors, so cosine similarity is a dot product. The index remembers which model made its embeddings: embeddings of
different models live in different spaces, so loading an index for another model is an error. On disk an index
is a folder (`SnippetIndex.save`, `SnippetIndex.load`); its format and checked, atomic I/O are `index_folder`'s,
whose names (`read_header`, `NotAnIndexError`, ...) are re-exported here.

How it searches is its backend (`keras_asr.index_backends`: exact, flat, hnsw, ivf, ivfpq), chosen when it is
built and recorded with it. "auto" is exact brute force in numpy below `FAISS_THRESHOLD` rows and an approximate
FAISS HNSW graph from there on (benchmarks/index_benchmark.py: at a million rows exact search takes ~11 ms a query
and ~0.8 s for a 100-excerpt piece query, HNSW 0.2 ms and 0.1 s).

Example:

```python
index = SnippetIndex(model_id="bl2-lc-at@3f2a9c")
index.add(sheet_embeddings, piece=["chopin_op6_2"] * n, page=pages, system=systems, page_x=xs, strip_x=centres)
index.save("library.index")

index = SnippetIndex.load("library.index", model_id="bl2-lc-at@3f2a9c")
ranking = index.identify(excerpt_embeddings, k=25)  # [("chopin_op6_2", 1873), ...]
```
"""

import collections
import hashlib
import pathlib

import numpy as np

from keras_asr import index_backends
from keras_asr import index_folder
from keras_asr.index_folder import COLLECTION_FILE  # noqa: F401 (with the names below, kept as `index.X`)
from keras_asr.index_folder import FORMAT  # noqa: F401
from keras_asr.index_folder import FORMAT_VERSION  # noqa: F401
from keras_asr.index_folder import HEADER_FILE  # noqa: F401
from keras_asr.index_folder import KINDS
from keras_asr.index_folder import READABLE_VERSIONS  # noqa: F401
from keras_asr.index_folder import DamagedIndexError  # noqa: F401
from keras_asr.index_folder import NotAnIndexError
from keras_asr.index_folder import RefusedOverwriteError  # noqa: F401
from keras_asr.index_folder import check_target  # noqa: F401
from keras_asr.index_folder import index_kind
from keras_asr.index_folder import read_collection
from keras_asr.index_folder import read_header

# Every column an index can hold, with its dtype; an index holds the columns its first `add` gave.
COLUMNS = {
    "piece": np.str_,
    "page": np.int32,
    "system": np.int32,
    "page_x": np.float32,
    "strip_x": np.float32,
    "measure": np.str_,  # a sheet index's measure number of each snippet ("" unknown); indexes before lack it
    "recording": np.str_,
    "time": np.float32,
}

# From this many rows on, "auto" trades exactness for speed: exact search of 100 excerpts nears a second, while
# the HNSW graph (minutes to build, kept by `save`) answers in ~0.1 s with recall@25 ~0.87 on uniform random
# 32-d vectors, the hardest case. Measured with benchmarks/index_benchmark.py.
FAISS_THRESHOLD = 1_000_000
METHODS = ("auto", *index_backends.BACKENDS)
brute_force_search = index_backends.brute_force_search  # noqa: F401 (kept as `index.brute_force_search`)


class EmptyIndexError(ValueError):
    """Raised when searching an index that holds no embeddings."""


class ModelMismatchError(ValueError):
    """Raised when an index built with one model is loaded for another."""


def model_id_of(weights, name=""):
    """A short, stable identity for a model: its name and a hash of its weight arrays.

    Args:
        weights: the model's weights as arrays (e.g. `model.get_weights()`).
        name: a readable prefix, e.g. "bl2-lc-at".

    Example:

    >>> model_id_of([np.zeros(3, np.float32)], name="bl2")
    'bl2@...'
    """
    digest = hashlib.sha256()
    for array in weights:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return f"{name}@{digest.hexdigest()[:16]}"


def normalize(embeddings):
    """float32 rows scaled to unit L2 norm (all-zero rows stay zero)."""
    embeddings = np.asarray(embeddings, dtype=np.float32)
    norms = np.linalg.norm(embeddings, axis=-1, keepdims=True)
    return embeddings / np.maximum(norms, np.finfo(np.float32).tiny)


class SnippetIndex:
    """Embeddings with metadata, searchable by cosine similarity.

    Args:
        model_id: identity of the model that made the embeddings (see `model_id_of`).
        method: the search backend: "auto" (exact below `FAISS_THRESHOLD` rows, hnsw from there) or one of
            `index_backends.BACKENDS`: "exact" (numpy brute force; "numpy" is its old name), "flat" (exact,
            FAISS), "hnsw", "ivf", "ivfpq" (approximate, FAISS).

    Example:

    >>> index = SnippetIndex(model_id="bl2@0123")
    >>> index.add(np.eye(3), piece=["a", "b", "c"], strip_x=[25, 75, 125])
    >>> index.search(np.array([[1.0, 0.1, 0.0]]), k=2)[1]
    array([[0, 1]])
    """

    def __init__(self, model_id, method="auto"):
        self.model_id = str(model_id)
        self.method = method
        self.embeddings = None
        self.metadata = {}
        self._faiss = None  # (method, index) built on first FAISS search, dropped on `add`

    def __len__(self):
        return 0 if self.embeddings is None else len(self.embeddings)

    @property
    def method(self):
        """The search backend: "auto" or one of `index_backends.BACKENDS`."""
        return self._method

    @method.setter
    def method(self, method):
        if method != "auto":
            try:
                method = index_backends.resolve(method)
            except ValueError:
                raise ValueError(f"Unknown search method '{method}'; expected one of {METHODS}.") from None
        self._method = method

    @property
    def dim(self):
        return None if self.embeddings is None else self.embeddings.shape[1]

    def add(self, embeddings, **metadata):
        """Appends rows: (n, dim) embeddings (normalised here) and one length-n sequence per metadata column."""
        embeddings = normalize(embeddings)
        if embeddings.ndim != 2:
            raise ValueError(f"Expected embeddings of shape (n, dim), got {embeddings.shape}.")
        unknown = set(metadata) - set(COLUMNS)
        if unknown:
            raise ValueError(f"Unknown metadata columns {sorted(unknown)}; known: {list(COLUMNS)}.")
        if self.embeddings is not None:
            if embeddings.shape[1] != self.dim:
                raise ValueError(f"Embeddings have dim {embeddings.shape[1]}, the index holds dim {self.dim}.")
            if set(metadata) != set(self.metadata):
                raise ValueError(f"Expected metadata columns {sorted(self.metadata)}, got {sorted(metadata)}.")
        columns = {}
        for name, values in metadata.items():
            values = np.asarray(values).astype(COLUMNS[name])
            if values.shape != (len(embeddings),):
                raise ValueError(f"Column '{name}' has shape {values.shape}, expected ({len(embeddings)},).")
            columns[name] = values
        if self.embeddings is None:
            self.embeddings, self.metadata = embeddings, columns
        else:
            self.embeddings = np.concatenate([self.embeddings, embeddings])
            self.metadata = {name: np.concatenate([self.metadata[name], columns[name]]) for name in columns}
        self._faiss = None

    def search(self, queries, k=25):
        """Cosine top-k.

        Args:
            queries: (q, dim) or (dim,) query embeddings (normalised here).
            k: neighbours per query (at most the index size).

        Returns:
            (similarities, rows): float32 and int64 arrays (q, k), best first.

        Raises:
            EmptyIndexError: the index holds no embeddings.
        """
        if len(self) == 0:
            raise EmptyIndexError("The index is empty: add embeddings (or load a saved index) before searching.")
        queries = normalize(np.atleast_2d(queries))
        if queries.shape[1] != self.dim:
            raise ValueError(f"Queries have dim {queries.shape[1]}, the index holds dim {self.dim}.")
        k = min(k, len(self))
        faiss_index = self.prepare()
        if faiss_index is None:
            return brute_force_search(self.embeddings, queries, k)
        similarities, rows = faiss_index.search(queries, k)
        return similarities, rows.astype(np.int64)

    def identify(self, queries, k=25):
        """Ranks pieces by votes of the `k` nearest rows of each query (SPEC: k = 25); see `vote`."""
        similarities, rows = self.search(queries, k)
        return vote(self.metadata["piece"][rows], similarities)

    def rows(self, rows):
        """Metadata of the given rows, one dict of column arrays shaped like `rows`."""
        return {name: values[rows] for name, values in self.metadata.items()}

    @property
    def kind(self):
        """"sheet", "audio" or None (see `KINDS`)."""
        return index_kind(self.metadata)

    def save(self, directory, collection=None, overwrite=False):
        """Writes the index to a directory, atomically: a kill or a full disk leaves the previous index whole.

        Every part (embeddings-<token>.npy, memory-mappable; metadata-<token>.npz; where one was built, the
        approximate FAISS index) is written under a new name and synced, then header.json, which lists the parts
        with their sizes, replaces the old header in one rename; the old parts are deleted after that.

        Args:
            directory: the index folder (created).
            collection: JSON-serialisable dict kept with the index (see `read_collection`).
            overwrite: write into a folder that is not empty and holds no index, or an index of the other kind.

        Raises:
            RefusedOverwriteError: `directory` is a file, or holds something else and `overwrite` is False.
            OSError: the write failed (e.g. a full disk); the folder's previous index, if any, is unchanged.
        """
        stored = self._faiss if self._faiss is not None and self._faiss[0] in index_backends.STORED else None
        index_folder.save(directory, self.embeddings, self.metadata, self.model_id, self.kind, stored,
                          collection=collection, overwrite=overwrite, method=self.method)

    @classmethod
    def load(cls, directory, model_id, method=None, mmap=True):
        """Reads an index saved by `save`, checking that its parts are whole and agree with its header.

        Args:
            directory: the index directory.
            model_id: the model the caller will embed queries with; must be the index's model. `None` skips the
                check (e.g. to inspect an index).
            method: search backend, see `SnippetIndex`; None: the one it was built with ("auto" for indexes
                written before backends were recorded).
            mmap: memory-map the embeddings instead of reading them (numpy search then streams them from disk).

        Raises:
            ModelMismatchError: the index was built with another model.
            NotAnIndexError: no header.json.
            DamagedIndexError: a part is missing, truncated, or disagrees with the header (row counts, columns).
            ValueError: a format version this code does not read.
        """
        directory = pathlib.Path(directory)
        header = read_header(directory)
        if model_id is not None and header["model_id"] != str(model_id):
            raise ModelMismatchError(
                f"The index at {directory} was built with model {header['model_id']!r}, not {model_id!r}: "
                "embeddings of different models are not comparable. Rebuild the index with this model."
            )
        index = cls(header["model_id"], method=method or header.get("method", "auto"))
        if header["count"]:
            index.embeddings, index.metadata = index_folder.read_rows(directory, header, mmap)
        stored = header.get("faiss_index")
        if stored is not None and stored == index.search_method():
            index._faiss = (stored, index_backends.tune(stored, index_folder.read_approximate(directory, header,
                                                                                              stored)))
        return index

    def prepare(self):
        """Builds the FAISS index the search method needs now rather than in the first search.

        Returns:
            The FAISS index, or None where search is numpy brute force.
        """
        method = self.search_method()
        if method == index_backends.EXACT or len(self) == 0:
            return None
        if self._faiss is None or self._faiss[0] != method:
            self._faiss = (method, index_backends.build_faiss(method, self.embeddings))
        return self._faiss[1]

    def search_method(self):
        """The backend a search uses now: `method`, or for "auto" the one its size calls for."""
        if self.method != "auto":
            return self.method
        return index_backends.EXACT if len(self) < FAISS_THRESHOLD else "hnsw"


def load_index(directory, model_id, kind=None, method=None, mmap=True):
    """Loads a non-empty index folder of the given kind and its collection.

    Args:
        directory, model_id, method, mmap: see `SnippetIndex.load`.
        kind: "sheet" or "audio", the kind the caller needs (None: any).

    Returns:
        (index, collection dict).

    Raises:
        EmptyIndexError: the index holds no embeddings.
        NotAnIndexError: not an index, or one of the other kind.
        And what `SnippetIndex.load` raises.
    """
    index = SnippetIndex.load(directory, model_id, method=method, mmap=mmap)
    if len(index) == 0:
        raise EmptyIndexError(f"The index at {directory} is empty: nothing was indexed into it.")
    if kind is not None and index.kind != kind:
        _, needed, command = KINDS[kind]
        raise NotAnIndexError(f"{directory} is not an index of {needed} (its columns: {sorted(index.metadata)}); "
                              f"build one with `{command}`.")
    return index, read_collection(directory)


def vote(hit_pieces, hit_similarities=None):
    """Ranks pieces by how many retrieved rows they own (the piece-identification vote).

    Args:
        hit_pieces: (excerpts, k) piece of each retrieved row.
        hit_similarities: optional (excerpts, k) similarities; break ties between equal vote counts by their sum.

    Returns:
        A list of (piece, votes), most votes first.

    Example:

    >>> vote(np.array([["a", "b"], ["b", "b"]]))
    [('b', 3), ('a', 1)]
    """
    hit_pieces = np.asarray(hit_pieces).reshape(-1)
    weights = np.zeros(len(hit_pieces)) if hit_similarities is None else np.asarray(hit_similarities).reshape(-1)
    votes, strength = collections.Counter(), collections.defaultdict(float)
    for piece, weight in zip(hit_pieces.tolist(), weights.tolist()):
        votes[piece] += 1
        strength[piece] += weight
    ranked = sorted(votes, key=lambda piece: (-votes[piece], -strength[piece], piece))
    return [(piece, votes[piece]) for piece in ranked]
