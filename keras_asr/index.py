"""A snippet index on disk: L2-normalised embeddings, per-row metadata, cosine top-k search, piece voting.

The retrieval end of the data flow. A sheet-side index holds one embedding per sheet snippet (SPEC: one every
50 px of unrolled score) with where it came from (piece, page, system, x on the page and on the strip); an
audio-side index holds one per audio excerpt (piece, recording, time in seconds). Embeddings are unit vectors,
so cosine similarity is a dot product. The index remembers which model made its embeddings: embeddings of
different models live in different spaces, so loading an index for another model is an error.

Search is exact, chunked brute force in numpy below `FAISS_THRESHOLD` rows and an approximate FAISS HNSW graph
from there on (benchmarks/index_benchmark.py: on 2 CPU cores numpy's brute force keeps up with FAISS's exact
IndexFlatIP at every size up to a million rows, and streams a memory-mapped index without copying it; at a
million rows it takes ~11 ms a query and ~0.8 s for a 100-excerpt piece query, HNSW 0.2 ms and 0.1 s).

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
import json
import pathlib
import re
import secrets
import shutil
import zipfile

import numpy as np

from keras_asr import atomic

FORMAT = "keras-asr-snippet-index"
# Version 2 names each write's parts uniquely, lists them (with their sizes) in header.json and keeps the
# collection (model and source files) there: replacing header.json is then the one step that commits a write.
# Version 1 (fixed part names, collection.json beside) still loads.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
HEADER_FILE = "header.json"
COLLECTION_FILE = "collection.json"  # the collection of a version-1 index
_VERSION_1_FILES = {"embeddings": "embeddings.npy", "metadata": "metadata.npz"}
# Parts of this module's writes: `<role>-<token>.<suffix>`, and the fixed names of version 1.
_PART = re.compile(r"(embeddings|metadata|hnsw|ivf)-[0-9a-f]{16}\.(npy|npz|faiss)"
                   r"|\.header\.json\.[0-9a-f]{16}\.tmp")
_VERSION_1_PARTS = {"embeddings.npy", "metadata.npz", "hnsw.faiss", "ivf.faiss", COLLECTION_FILE}

# The metadata columns that make an index of each kind, with what the kind indexes and the command that builds it.
KINDS = {
    "sheet": (("page", "page_x", "piece", "strip_x", "system"), "scores", "keras-asr index"),
    "audio": (("recording", "time"), "recordings", "keras-asr index-audio"),
}

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
METHODS = ("auto", "numpy", "flat", "hnsw", "ivf")
APPROXIMATE_METHODS = ("hnsw", "ivf")
# Approximate-index settings, chosen with the same benchmark.
HNSW_M = 32
HNSW_EF_SEARCH = 128
IVF_LISTS_PER_SQRT_N = 4
IVF_PROBES = 32


class EmptyIndexError(ValueError):
    """Raised when searching an index that holds no embeddings."""


class ModelMismatchError(ValueError):
    """Raised when an index built with one model is loaded for another."""


class NotAnIndexError(ValueError):
    """Raised when a folder holds no index, or an index of the other kind."""


class DamagedIndexError(ValueError):
    """Raised when an index's files are missing, truncated or disagree with its header."""


class RefusedOverwriteError(ValueError):
    """Raised when saving would write into a folder that is not an index of the same kind."""


def index_kind(columns):
    """"sheet", "audio" or None: the kind of index that metadata `columns` make (see `KINDS`)."""
    for kind, (needed, _, _) in KINDS.items():
        if set(columns) >= set(needed):
            return kind
    return None


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
        method: "auto" (numpy below `FAISS_THRESHOLD` rows, FAISS HNSW from there), "numpy" (exact brute force),
            "flat" (exact, FAISS IndexFlatIP), "hnsw" (approximate, FAISS IndexHNSWFlat) or "ivf"
            (approximate, FAISS IndexIVFFlat).

    Example:

    >>> index = SnippetIndex(model_id="bl2@0123")
    >>> index.add(np.eye(3), piece=["a", "b", "c"], strip_x=[25, 75, 125])
    >>> index.search(np.array([[1.0, 0.1, 0.0]]), k=2)[1]
    array([[0, 1]])
    """

    def __init__(self, model_id, method="auto"):
        if method not in METHODS:
            raise ValueError(f"Unknown search method '{method}'; expected one of {METHODS}.")
        self.model_id = str(model_id)
        self.method = method
        self.embeddings = None
        self.metadata = {}
        self._faiss = None  # (method, index) built on first FAISS search, dropped on `add`

    def __len__(self):
        return 0 if self.embeddings is None else len(self.embeddings)

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
        directory = pathlib.Path(directory)
        previous = check_target(directory, self.kind, overwrite)
        directory.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(8)
        embeddings = self.embeddings if self.embeddings is not None else np.zeros((0, 0), np.float32)
        files, written = {}, []

        def part(role, suffix, write):
            name = f"{role}-{token}.{suffix}"
            written.append(directory / name)
            write(directory / name)
            atomic.fsync(directory / name)
            files[role] = name

        try:
            part("embeddings", "npy", lambda path: np.save(path, embeddings))
            part("metadata", "npz", lambda path: _savez(path, self.metadata))
            # An approximate index takes minutes to build at a million rows: keep the one built, if any.
            if self._faiss is not None and self._faiss[0] in APPROXIMATE_METHODS:
                import faiss

                part(self._faiss[0], "faiss", lambda path: faiss.write_index(self._faiss[1], str(path)))
            header = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "model_id": self.model_id,
                "count": len(self),
                "dim": self.dim,
                "kind": self.kind,
                "columns": sorted(self.metadata),
                "faiss_index": self._faiss[0] if self._faiss is not None and self._faiss[0] in files else None,
                "files": files,
                "sizes": {name: (directory / name).stat().st_size for name in files.values()},
                "collection": collection or {},
            }
            with atomic.written_beside(directory / HEADER_FILE) as temporary:  # the commit
                pathlib.Path(temporary).write_text(json.dumps(header, indent=2) + "\n")
        except BaseException as e:  # Ctrl-C included: take back the parts of this write, keep the old index
            for path in written:
                path.unlink(missing_ok=True)
            if isinstance(e, OSError):
                # numpy reports a full disk as "N requested and M written": say how much room there is.
                free = shutil.disk_usage(directory).free / 2**20
                kept = "the index there is unchanged" if previous else "nothing was written"
                raise OSError(f"Cannot write the index at {directory}: {e.strerror or e} ({free:.0f} MiB free on "
                              f"its disk); {kept}.") from e
            raise
        # The old parts go last; a process that memory-mapped them keeps reading them (POSIX unlink semantics).
        for path in directory.iterdir():
            stale = _PART.fullmatch(path.name) or (previous is not None and path.name in _VERSION_1_PARTS)
            if stale and path.name not in files.values():
                path.unlink(missing_ok=True)

    @classmethod
    def load(cls, directory, model_id, method="auto", mmap=True):
        """Reads an index saved by `save`, checking that its parts are whole and agree with its header.

        Args:
            directory: the index directory.
            model_id: the model the caller will embed queries with; must be the index's model. `None` skips the
                check (e.g. to inspect an index).
            method: search method, see `SnippetIndex`.
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
        index = cls(header["model_id"], method=method)
        files = header.get("files", _VERSION_1_FILES)
        count = header["count"]
        if count:
            for role in ("embeddings", "metadata"):
                _check_part(directory, header, files.get(role))
            path = directory / files["embeddings"]
            embeddings = _read_part(path, lambda: np.load(path, mmap_mode="r" if mmap else None))
            if embeddings.shape != (count, header["dim"]):
                raise DamagedIndexError(f"{path} holds embeddings of shape {embeddings.shape}, but {HEADER_FILE} "
                                        f"says ({count}, {header['dim']}): the index is damaged; rebuild it.")
            path = directory / files["metadata"]
            index.embeddings, index.metadata = embeddings, _read_part(path, lambda: _load_columns(path, header))
        stored = header.get("faiss_index")
        if stored is not None and stored == index._search_method():
            import faiss

            name = files.get(stored, f"{stored}.faiss")
            _check_part(directory, header, name)
            faiss_index = _read_part(directory / name, lambda: faiss.read_index(str(directory / name)))
            if faiss_index.ntotal != count:
                raise DamagedIndexError(f"{directory / name} holds {faiss_index.ntotal} rows, not {count}: the "
                                        "index is damaged; rebuild it.")
            index._faiss = (stored, _tuned(faiss_index))
        return index

    def prepare(self):
        """Builds the FAISS index the search method needs now rather than in the first search.

        Returns:
            The FAISS index, or None where search is numpy brute force.
        """
        method = self._search_method()
        if method == "numpy" or len(self) == 0:
            return None
        if self._faiss is not None and self._faiss[0] == method:
            return self._faiss[1]
        import faiss

        n, dim = self.embeddings.shape
        if method == "flat":
            index = faiss.IndexFlatIP(dim)
        elif method == "hnsw":
            index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        else:
            lists = max(1, int(IVF_LISTS_PER_SQRT_N * np.sqrt(n)))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, lists, faiss.METRIC_INNER_PRODUCT)
            index.train(_training_sample(self.embeddings, 64 * lists))
        index.add(np.ascontiguousarray(self.embeddings, dtype=np.float32))
        self._faiss = (method, _tuned(index))
        return index

    def _search_method(self):
        if self.method != "auto":
            return self.method
        return "numpy" if len(self) < FAISS_THRESHOLD else "hnsw"


def read_header(directory):
    """The header of an index folder, checked for format and version.

    Raises:
        NotAnIndexError: no header.json in `directory`.
        DamagedIndexError: header.json is not a readable header.
        ValueError: another format, or a version this code does not read.
    """
    path = pathlib.Path(directory) / HEADER_FILE
    if not path.is_file():
        raise NotAnIndexError(f"{directory} is not a keras-asr index (no {HEADER_FILE}).")
    try:
        header = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DamagedIndexError(f"{path} is not valid JSON ({e}): the index is damaged; rebuild it.") from e
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise NotAnIndexError(f"{path} is not the header of a keras-asr index.")
    if header.get("format_version") not in READABLE_VERSIONS:
        raise ValueError(f"{directory} holds format {FORMAT!r} version {header.get('format_version')!r}; this "
                         f"keras-asr reads versions {', '.join(map(str, READABLE_VERSIONS))}.")
    missing = {"model_id", "count", "dim", "columns"} - set(header)
    if missing:
        raise DamagedIndexError(f"{path} lacks {sorted(missing)}: the index is damaged; rebuild it.")
    return header


def read_collection(directory):
    """The collection dict saved with an index (`{}` where none was), e.g. `{"model": ..., "sources": ...}`."""
    directory = pathlib.Path(directory)
    header = read_header(directory)
    if "collection" in header:
        return header["collection"]
    path = directory / COLLECTION_FILE  # version 1
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DamagedIndexError(f"{path} is not valid JSON ({e}): the index is damaged; rebuild it.") from e


def load_index(directory, model_id, kind=None, method="auto", mmap=True):
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


def check_target(directory, kind, overwrite=False):
    """Whether an index of `kind` may be saved into `directory`: the header of the index it would replace.

    Returns:
        That header, or None where `directory` is missing, empty, or overwritten although it holds no index.

    Raises:
        RefusedOverwriteError: `directory` is a file, or (unless `overwrite`) holds something other than an index
            of this kind.
    """
    directory = pathlib.Path(directory)
    if not directory.exists():
        return None
    if not directory.is_dir():
        raise RefusedOverwriteError(f"{directory} is a file, not an index folder.")
    if not any(directory.iterdir()):
        return None
    what = {"sheet": "scores", "audio": "recordings", None: "nothing"}
    try:
        header = read_header(directory)
    except ValueError as e:
        if overwrite:
            return None
        found = "holds no keras-asr index" if isinstance(e, NotAnIndexError) else f"holds a damaged index ({e})"
        raise RefusedOverwriteError(f"{directory} is not empty and {found}: refusing to write an index into it "
                                    "(choose a new folder, or overwrite: --overwrite).") from e
    previous = header.get("kind", index_kind(header["columns"]))
    if previous != kind and not overwrite:
        raise RefusedOverwriteError(f"{directory} holds an index of {what[previous]}: refusing to replace it with "
                                    f"an index of {what[kind]} (choose another folder, or overwrite: --overwrite).")
    return header


def _savez(path, columns):
    with open(path, "wb") as file:  # a file object: np.savez would append ".npz" to a name
        np.savez(file, **columns)


def _check_part(directory, header, name):
    path = directory / str(name)
    if name is None or not path.is_file():
        raise DamagedIndexError(f"{path} is missing: the index is damaged; rebuild it.")
    size = header.get("sizes", {}).get(name)
    if size is not None and path.stat().st_size != size:
        raise DamagedIndexError(f"{path} has {path.stat().st_size} bytes, {HEADER_FILE} says {size} (truncated or "
                                "replaced): the index is damaged; rebuild it.")


def _read_part(path, read):
    try:
        return read()
    except (ValueError, OSError, EOFError, KeyError, RuntimeError, zipfile.BadZipFile) as e:
        if isinstance(e, DamagedIndexError):
            raise
        raise DamagedIndexError(f"{path} cannot be read ({type(e).__name__}: {e}): the index is damaged; "
                                "rebuild it.") from e


def _load_columns(path, header):
    with np.load(path) as metadata:
        missing = set(header["columns"]) - set(metadata.files)
        if missing:
            raise DamagedIndexError(f"{path} lacks the columns {sorted(missing)}: the index is damaged; rebuild it.")
        columns = {name: metadata[name] for name in header["columns"]}
    for name, values in columns.items():
        if values.shape != (header["count"],):
            raise DamagedIndexError(f"{path}: column {name!r} has shape {values.shape}, {HEADER_FILE} says "
                                    f"({header['count']},): the index is damaged; rebuild it.")
    return columns


def _tuned(index):
    """Sets the search-time accuracy of an approximate FAISS index (not all of it survives a write/read)."""
    import faiss

    if isinstance(index, faiss.IndexHNSW):
        index.hnsw.efSearch = HNSW_EF_SEARCH
    elif isinstance(index, faiss.IndexIVF):
        index.nprobe = IVF_PROBES
    return index


def _training_sample(embeddings, size):
    rows = np.random.default_rng(0).permutation(len(embeddings))[:size]
    return np.ascontiguousarray(embeddings[np.sort(rows)], dtype=np.float32)


def brute_force_search(embeddings, queries, k, chunk_size=65_536):
    """Exact cosine top-k of unit `queries` against unit `embeddings`, streaming the rows in chunks.

    Chunks bound the (queries x rows) similarity matrix and let a memory-mapped index be searched without
    reading it whole.

    Returns:
        (similarities, rows): float32 and int64 arrays (q, k), best first (ties: lower row first).
    """
    best_similarities = np.full((len(queries), 0), -np.inf, np.float32)
    best_rows = np.zeros((len(queries), 0), np.int64)
    for start in range(0, len(embeddings), chunk_size):
        chunk = np.asarray(embeddings[start:start + chunk_size], dtype=np.float32)
        similarities = queries @ chunk.T
        if similarities.shape[1] > k:
            top = np.argpartition(-similarities, k - 1, axis=1)[:, :k]
            similarities = np.take_along_axis(similarities, top, axis=1)
        else:
            top = np.broadcast_to(np.arange(similarities.shape[1]), similarities.shape)
        best_similarities = np.concatenate([best_similarities, similarities], axis=1)
        best_rows = np.concatenate([best_rows, top + start], axis=1)
        # Sort by similarity, then row, so that results do not depend on the chunking.
        order = np.lexsort((best_rows, -best_similarities), axis=1)[:, :k]
        best_similarities = np.take_along_axis(best_similarities, order, axis=1)
        best_rows = np.take_along_axis(best_rows, order, axis=1)
    return best_similarities, best_rows


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
