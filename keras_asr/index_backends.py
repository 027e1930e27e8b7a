"""How a snippet index searches: exact brute force in NumPy, or a FAISS index made by `faiss.index_factory`.

A backend is a name here and nothing else: `SnippetIndex(method=...)`, `keras-asr index --backend` and the
index folder's header all go by these names, so a new backend is one entry in `FAISS_BACKENDS`.

- "exact": chunked NumPy brute force. On 2 cores it keeps up with FAISS's exact IndexFlatIP at every size up to a
  million rows and streams a memory-mapped index without copying it (benchmarks/index_benchmark.py).
- "flat": FAISS's exact inner-product index.
- "hnsw": an HNSW graph, approximate; ~0.1 s for a 100-excerpt query at a million rows.
- "ivf": an inverted file of flat lists, approximate.
- "ivfpq": an inverted file of product-quantised codes (16 bytes a row instead of 128): approximate, for
  collections whose embeddings do not fit in memory.

The approximate ones take minutes to build at a million rows; `STORED` are kept in the index folder.
"""

import numpy as np

EXACT = "exact"
# name -> (index_factory string for n rows, search-time parameters for faiss.ParameterSpace)
FAISS_BACKENDS = {
    "flat": (lambda n: "Flat", ""),
    "hnsw": (lambda n: "HNSW32", "efSearch=128"),
    "ivf": (lambda n: f"IVF{_lists(n)},Flat", "nprobe=32"),
    "ivfpq": (lambda n: f"IVF{_lists(n)},PQ16", "nprobe=32"),
}
BACKENDS = (EXACT, *FAISS_BACKENDS)
STORED = ("hnsw", "ivf", "ivfpq")
ALIASES = {"numpy": EXACT}  # the name of "exact" before backends had names of their own
# Inverted lists per sqrt(rows), and training rows per list (FAISS warns below 39).
IVF_LISTS_PER_SQRT_N = 4
TRAINING_ROWS_PER_LIST = 64


def resolve(name):
    """The backend a name means ("numpy" is the old name of "exact")."""
    name = ALIASES.get(name, name)
    if name not in BACKENDS:
        raise ValueError(f"Unknown search backend {name!r}; expected one of {BACKENDS}.")
    return name


def build_faiss(name, embeddings):
    """A filled, tuned FAISS index of backend `name` over (n, dim) unit embeddings (inner product)."""
    import faiss

    factory, _ = FAISS_BACKENDS[name]
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    n, dim = embeddings.shape
    index = faiss.index_factory(dim, factory(n), faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(_training_sample(embeddings, TRAINING_ROWS_PER_LIST * _lists(n)))
    index.add(embeddings)
    return tune(name, index)


def tune(name, index):
    """Sets the search-time accuracy of a FAISS index of backend `name` (not all of it survives a write/read)."""
    import faiss

    parameters = FAISS_BACKENDS[name][1]
    if parameters:
        faiss.ParameterSpace().set_index_parameters(index, parameters)
    return index


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


def _lists(n):
    return max(1, int(IVF_LISTS_PER_SQRT_N * np.sqrt(n)))


def _training_sample(embeddings, size):
    rows = np.random.default_rng(0).permutation(len(embeddings))[:size]
    return np.ascontiguousarray(embeddings[np.sort(rows)], dtype=np.float32)
