"""The index folder on disk: its format (header.json and the parts it lists), atomic writes, checked reads.

A folder holds one `index.SnippetIndex`: the embeddings (embeddings-<token>.npy, memory-mappable), the metadata
columns (metadata-<token>.npz), where one was built the approximate FAISS index, and header.json, which names the
parts with their sizes, the model, the row count, the kind of index (`KINDS`) and the collection (the model and
source files that made it). A write puts every part under a new name and replaces header.json last, in one
rename, so that a kill or a full disk leaves the previous index whole; a read checks every part against the
header, so that a damaged index is reported as such instead of answering wrongly.

`SnippetIndex.save` and `SnippetIndex.load` write and read through this module.

Example:

```python
check_target("library.index", "sheet")         # before minutes of embedding: may an index go there?
index.save("library.index", collection={"model": {"model": "bl1_sc_msmd.keras"}})
read_header("library.index")["count"]          # rows, without loading them
read_collection("library.index")["model"]      # {"model": "bl1_sc_msmd.keras"}
```
"""

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
_PART = re.compile(r"(embeddings|metadata|hnsw|ivf|ivfpq)-[0-9a-f]{16}\.(npy|npz|faiss)"
                   r"|\.header\.json\.[0-9a-f]{16}\.tmp")
_VERSION_1_PARTS = {"embeddings.npy", "metadata.npz", "hnsw.faiss", "ivf.faiss", COLLECTION_FILE}

# The metadata columns that make an index of each kind, with what the kind indexes and the command that builds it.
KINDS = {
    "sheet": (("page", "page_x", "piece", "strip_x", "system"), "scores", "keras-asr index"),
    "audio": (("recording", "time"), "recordings", "keras-asr index-audio"),
}


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


def save(directory, embeddings, metadata, model_id, kind, approximate=None, collection=None, overwrite=False,
         method="auto"):
    """Writes an index's parts and header.json into `directory`, atomically (see `SnippetIndex.save`).

    Args:
        directory: the index folder (created).
        embeddings: (n, dim) unit embeddings, or None for an empty index.
        metadata: one (n,) array per column.
        model_id, kind: the model that made the embeddings and the kind of index (`KINDS`), for the header.
        approximate: (backend, FAISS index) of an approximate index to keep with the embeddings, or None.
        collection, overwrite: see `SnippetIndex.save`.
        method: the search backend the index was built for (`keras_asr.index_backends`), used when it loads.

    Raises:
        RefusedOverwriteError: `directory` is a file, or holds something else and `overwrite` is False.
        OSError: the write failed (e.g. a full disk); the folder's previous index, if any, is unchanged.
    """
    directory = pathlib.Path(directory)
    previous = check_target(directory, kind, overwrite)
    directory.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    count, dim = (0, None) if embeddings is None else (len(embeddings), embeddings.shape[1])
    embeddings = embeddings if embeddings is not None else np.zeros((0, 0), np.float32)
    files, written = {}, []

    def part(role, suffix, write):
        name = f"{role}-{token}.{suffix}"
        written.append(directory / name)
        write(directory / name)
        atomic.fsync(directory / name)
        files[role] = name

    try:
        part("embeddings", "npy", lambda path: np.save(path, embeddings))
        part("metadata", "npz", lambda path: _savez(path, metadata))
        # An approximate index takes minutes to build at a million rows: keep the one built, if any.
        if approximate is not None:
            import faiss

            part(approximate[0], "faiss", lambda path: faiss.write_index(approximate[1], str(path)))
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_id": model_id,
            "count": count,
            "dim": dim,
            "kind": kind,
            "columns": sorted(metadata),
            "faiss_index": approximate[0] if approximate is not None and approximate[0] in files else None,
            "method": method,
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


def read_rows(directory, header, mmap=True):
    """(embeddings, metadata) of an index folder whose `header` counts rows, checked against that header.

    Args:
        mmap: memory-map the embeddings instead of reading them.

    Raises:
        DamagedIndexError: a part is missing, truncated, or disagrees with the header (row counts, columns).
    """
    directory = pathlib.Path(directory)
    files = header.get("files", _VERSION_1_FILES)
    count = header["count"]
    for role in ("embeddings", "metadata"):
        _check_part(directory, header, files.get(role))
    path = directory / files["embeddings"]
    embeddings = _read_part(path, lambda: np.load(path, mmap_mode="r" if mmap else None))
    if embeddings.shape != (count, header["dim"]):
        raise DamagedIndexError(f"{path} holds embeddings of shape {embeddings.shape}, but {HEADER_FILE} "
                                f"says ({count}, {header['dim']}): the index is damaged; rebuild it.")
    path = directory / files["metadata"]
    return embeddings, _read_part(path, lambda: _load_columns(path, header))


def read_approximate(directory, header, method):
    """The approximate FAISS index (`method`: "hnsw", "ivf" or "ivfpq") an index folder keeps, checked against `header`.

    Raises:
        DamagedIndexError: its file is missing, truncated, unreadable, or holds another number of rows.
    """
    import faiss

    directory = pathlib.Path(directory)
    files = header.get("files", _VERSION_1_FILES)
    count = header["count"]
    name = files.get(method, f"{method}.faiss")
    _check_part(directory, header, name)
    faiss_index = _read_part(directory / name, lambda: faiss.read_index(str(directory / name)))
    if faiss_index.ntotal != count:
        raise DamagedIndexError(f"{directory / name} holds {faiss_index.ntotal} rows, not {count}: the "
                                "index is damaged; rebuild it.")
    return faiss_index


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
