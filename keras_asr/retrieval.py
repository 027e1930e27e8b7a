"""The retrieval application: index a score collection or a set of recordings, identify a recording, locate a
snippet of sheet music in recordings.

Built on `sheet` (pages -> snippets), `audio` (recording -> spectrogram) and `index` (search and the piece
vote of SPEC: evenly spaced excerpts of a recording each retrieve their 25 nearest snippets, pieces are ranked
by votes). An index directory holds a `SnippetIndex` and its collection (`index.read_collection`): the model
files that made it and the score file of every piece, so that a query needs only the index and `--plot` can
redraw the pages.

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

import collections
import hashlib
import itertools
import os
import pathlib

import numpy as np

from keras_asr import audio as audio_lib
from keras_asr import index as index_lib
from keras_asr import matching
from keras_asr import measures
from keras_asr import sheet
from keras_asr import windows

COLLECTION_FILE = index_lib.COLLECTION_FILE  # kept for callers; the folder's I/O is in index.py
SHEET_COLUMNS = index_lib.KINDS["sheet"][0]
AUDIO_COLUMNS = index_lib.KINDS["audio"][0]
# A recording whose peak stays below -60 dBFS carries no music the model could match.
SILENCE_PEAK = 1e-3
# Median over frames of the loudest band below which a recording is silent where the model listens (30-6,000 Hz):
# a DC offset gives 0.007, a sine at -40 dBFS 0.68, a piano recording about 0.5.
BAND_SILENCE = 0.05
# Staff space of verovio's engraving at 835 px (7.1-7.25 px on a chorale and a mazurka of music21's corpus).
REFERENCE_STAFF_SPACE = 7.2
DEFAULT_AUDIO_HOP = 10  # frames between excerpts of an audio index: 0.5 s
BATCH_SIZE = 64
# Up to this many snippets every piece is aligned with a query (~0.1 s); beyond, the CANDIDATES pieces that
# most excerpts' nearest snippets name.
DENSE_ROWS = 200_000
CANDIDATES = 100
# The best path must lead the second by this many standard deviations of the other pieces' scores.
NO_MATCH_Z = 2.0
# Half-width (in excerpts) of the line fitted through a path's positions: ~1 s of a 30 s query's 100 excerpts.
SMOOTH_EXCERPTS = 4


class RetrievalError(ValueError):
    """A problem with the user's input (file, index, model) that a message can explain."""


# ---------------------------------------------------------------------------------------------------------------
# Encoders


class Encoders:
    """The sheet and audio embedding functions of one model, from a `.keras` file or a SavedModel export.

    Attributes:
        frames: audio excerpt length in frames (20 per second).
        model_id: identity of the weights (`index.model_id_of`); the same for a model and its SavedModel export.
        source: `{"model": path}` or `{"saved_model": directory}`, as recorded in an index.
    """

    def __init__(self, embed_sheet, embed_audio, frames, weights, source, attention=None):
        self._embed_sheet = embed_sheet
        self._embed_audio = embed_audio
        self._attention = attention
        self.frames = int(frames)
        # Sorted by content, so that the id does not depend on the order a format lists its variables in.
        arrays = sorted((np.asarray(w) for w in weights), key=lambda a: hashlib.sha256(a.tobytes()).digest())
        self.model_id = index_lib.model_id_of(arrays, name=f"keras-asr-c{self.frames}")
        self.source = source

    @property
    def has_attention(self):
        return self._attention is not None

    def sheet(self, snippets):
        """(n, 80, 100) snippets -> (n, 32) unit embeddings."""
        return _batched(self._embed_sheet, snippets)

    def audio(self, excerpts):
        """(n, 92, frames) spectrogram excerpts -> (n, 32) unit embeddings."""
        return _batched(self._embed_audio, excerpts)

    def attention(self, excerpts):
        """(n, frames) attention weights of the excerpts, or None for a model without attention."""
        return None if self._attention is None else _batched(self._attention, excerpts)


def _batched(fn, inputs):
    inputs = np.asarray(inputs, np.float32)
    outputs = [np.asarray(fn(inputs[i:i + BATCH_SIZE])) for i in range(0, len(inputs), BATCH_SIZE)]
    return np.concatenate(outputs) if outputs else np.zeros((0, 32), np.float32)


def load_encoders(model=None, saved_model=None):
    """Loads the encoders of a `.keras` model or of a SavedModel export directory (exactly one of the two).

    Raises:
        RetrievalError: no model given, or the file cannot be loaded as a keras-asr model.
    """
    if (model is None) == (saved_model is None):
        raise RetrievalError("Give exactly one model: a .keras file (--model) or a SavedModel export (--saved-model).")
    if model is not None:
        return _keras_encoders(model)
    return _saved_model_encoders(saved_model)


def _keras_encoders(path):
    import keras

    from keras_asr.saving import load_model

    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise RetrievalError(f"No model file at {path}.")
    try:
        model = load_model(path)
    except Exception as e:  # keras raises many types for a broken or foreign file
        raise RetrievalError(f"Cannot load {path} as a keras-asr model: {e}") from e
    sheet_encoder, audio_encoder = model.sheet_encoder, model.audio_encoder
    attention = model.audio_tower.attention_model if model.attention else None
    return Encoders(
        sheet_encoder.predict_on_batch,
        audio_encoder.predict_on_batch,
        frames=model.frames,
        weights=[keras.ops.convert_to_numpy(w) for encoder in (sheet_encoder, audio_encoder) for w in encoder.weights],
        source={"model": path},
        attention=None if attention is None else attention.predict_on_batch,
    )


def _saved_model_encoders(directory):
    import tensorflow as tf

    directory = os.path.abspath(directory)
    loaded = {}
    for name in ("sheet_encoder", "audio_encoder"):
        path = os.path.join(directory, name)
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise RetrievalError(
                f"No SavedModel at {path}: expected {directory} to hold audio_encoder/ and sheet_encoder/ "
                "as written by keras_asr.export_encoders."
            )
        try:
            loaded[name] = tf.saved_model.load(path)
        except Exception as e:
            raise RetrievalError(f"Cannot load the SavedModel at {path}: {e}") from e
    sheet_model, audio_model = loaded["sheet_encoder"], loaded["audio_encoder"]
    frames = audio_model.serve.concrete_functions[0].structured_input_signature[0][0].shape[2]
    # The closures keep the loaded objects alive: their functions use the objects' variables.
    return Encoders(
        lambda x: sheet_model.serve(tf.constant(x)).numpy(),
        lambda x: audio_model.serve(tf.constant(x)).numpy(),
        frames=frames,
        weights=[v.numpy() for model in (sheet_model, audio_model) for v in model.variables],
        source={"saved_model": directory},
    )


# ---------------------------------------------------------------------------------------------------------------
# Index directories


def save_index(index, directory, encoders, sources=None, overwrite=False, **settings):
    """Writes `index` with its collection (model source, score or recording files, settings), atomically.

    See `index.SnippetIndex.save` (the folder's I/O and its checks live in `keras_asr.index`).
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


def _unique_name(stem, taken):
    name, k = stem, 2
    while name in taken:
        name, k = f"{stem}~{k}", k + 1
    return name


# ---------------------------------------------------------------------------------------------------------------
# Sheet side


def index_scores(encoders, paths, hop=sheet.SNIPPET_HOP, log=None):
    """Embeds snippets every `hop` px of the unrolled score of each file.

    A file that cannot be read or holds no staff system is reported and skipped.

    Args:
        encoders: an `Encoders`.
        paths: page images, PDFs or score files; each is one piece, named after its file.
        hop: px of unrolled score between snippet centres (SPEC: 50).
        log: optional callable taking one progress line.

    Returns:
        (index, sources, skipped): the `SnippetIndex`, `{piece: absolute path}`, and `{path: reason}`.
    """

    def load(path):
        pages, spans = sheet.load_score(path)
        score = sheet.unroll(pages)
        if not len(sheet.snippet_centres(score.width, hop)):
            raise ValueError(f"its unrolled score is {score.width} px long, and snippets every --hop {hop} px "
                             f"start {hop // 2} px in: no snippet; give a --hop under {2 * score.width} px")
        return score, spans

    def add(index, piece, loaded):
        return add_score(index, encoders, piece, *loaded, hop=hop)

    # No staff system; unreadable image, PDF or score; shorter than the first snippet centre.
    return _index_files(encoders, paths, load, (ValueError, OSError, RuntimeError), add, log)


def add_score(index, encoders, piece, score, spans=None, hop=sheet.SNIPPET_HOP):
    """Adds the snippets every `hop` px of an `UnrolledScore` to a sheet index; returns a progress line.

    `spans` are the score's measures (`sheet.load_score`); each snippet records the measure it is centred in,
    "" where there are none (a page image, a PDF).
    """
    centres = sheet.snippet_centres(score.width, hop)
    page, system, page_x = score.strip_to_page(centres)
    index.add(
        encoders.sheet(windows.snippets(score.strip, centres)),
        piece=[piece] * len(centres), page=page, system=system, page_x=page_x, strip_x=centres,
        measure=measures.numbers_at(score, spans, centres),
    )
    per_page = "+".join(map(str, score.systems_per_page))  # a page that lost its systems shows as 0
    turned = score.turned_pages and f", upside-down page(s) {', '.join(str(k + 1) for k in score.turned_pages)} turned"
    return (f"piece {piece}, {len(set(page.tolist()))} page(s), {len(score.systems)} system(s) ({per_page} by "
            f"page), {len(centres)} snippets{turned or ''}")


def _index_files(encoders, paths, load, errors, add, log=None):
    """The loop of `index_scores` and `index_recordings`: each file is loaded, named after its stem (made
    unique) and added to one index; a file whose `load` raises one of `errors` is reported and skipped.

    Args:
        load: path -> the file's content.
        errors: exception types that mean "skip this file".
        add: (index, name, content) -> the file's progress line, after adding its rows to the index.
    """
    log = log or (lambda line: None)
    index = index_lib.SnippetIndex(encoders.model_id)
    sources, skipped = {}, {}
    for k, path in enumerate(paths, 1):
        prefix = f"[{k}/{len(paths)}] {path}"
        try:
            content = load(path)
        except errors as e:
            skipped[path] = str(e)
            log(f"{prefix}: skipped: {e}")
            continue
        name = _unique_name(pathlib.Path(path).stem, sources)
        line = add(index, name, content)
        sources[name] = os.path.abspath(path)
        log(f"{prefix}: {line}")
    return index, sources, skipped


def sheet_queries(path, page=None, system=None, x=None, hop=sheet.SNIPPET_HOP):
    """Snippets to look up in recordings: a region of a score file, or an image crop of sheet music.

    A score, PDF or page image is unrolled as in the index, and `page`/`system`/`x` (counted from 1; x in
    pixels of the 835-px page) narrow it down: one snippet at `x`, or snippets every `hop` px of the system, the
    page, or the whole score. An image without `page` is a crop of any size: it is rescaled so that its staff
    space is that of an engraved 835-px page, and cut into snippets every `hop` px.

    Returns:
        (snippets (n, 80, 100), positions): one dict of page/system/x per snippet (None for a crop).

    Raises:
        sheet.NoStaffSystemsError: no staff system in the file or region.
        RetrievalError: no such page or system.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise RetrievalError(f"No sheet file at {path}.")
    if path.suffix.lower() in sheet.IMAGE_SUFFIXES and page is None:
        score = sheet.unroll([_rescale_crop(sheet.load_image(path))])
        centres = sheet.snippet_centres(score.width, hop)
        return windows.snippets(score.strip, centres), [None] * len(centres)
    score = sheet.unroll(sheet.load_pages(path))
    keep = np.ones(len(score.systems), bool)
    if page is not None:
        keep &= score.system_pages == page - 1
        if system is not None:
            keep &= score.system_numbers == system - 1
        if not keep.any():
            where = f"page {page}" + (f", system {system}" if system is not None else "")
            raise RetrievalError(f"{path} has no staff system at {where}.")
    elif system is not None or x is not None:
        raise RetrievalError("--system and --x need --page.")
    if x is not None:
        if system is None:
            raise RetrievalError("--x needs --system.")
        box = score.systems[int(np.flatnonzero(keep)[0])]
        if not box.left <= x <= box.right:
            raise RetrievalError(
                f"x = {x:g} lies outside page {page}, system {system} (columns {box.left}-{box.right})."
            )
        centres = np.atleast_1d(score.page_to_strip(page - 1, system - 1, x))
    else:
        all_centres = sheet.snippet_centres(score.width, hop)
        systems_of = np.searchsorted(score.system_starts, all_centres, side="right") - 1
        centres = all_centres[keep[systems_of]]
        if not len(centres):
            raise RetrievalError(f"The selected region of {path} is narrower than --hop ({hop} px): give --x.")
    pages, systems, xs = score.strip_to_page(centres)
    positions = [{"page": int(p) + 1, "system": int(s) + 1, "x": float(v)} for p, s, v in zip(pages, systems, xs)]
    return windows.snippets(score.strip, centres), positions


def _rescale_crop(image):
    """Scales a crop so that its staff space matches an engraved page's."""
    systems = sheet.detect_systems(image)
    space = np.mean([s.staff_space for s in systems])
    rows = max(1, round(image.shape[0] * REFERENCE_STAFF_SPACE / space))
    cols = max(1, round(image.shape[1] * REFERENCE_STAFF_SPACE / space))
    import skimage.transform

    return skimage.transform.resize(image, (rows, cols), order=1, anti_aliasing=space > REFERENCE_STAFF_SPACE,
                                    preserve_range=True).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Audio side


def load_spectrogram(path, frames):
    """The spectrogram of a recording, checked to hold sound and at least one excerpt of `frames` frames.

    Raises:
        RetrievalError: missing or undecodable file, silence, or shorter than one excerpt.
    """
    try:
        signal = audio_lib.load_audio(path)
    except (FileNotFoundError, ValueError) as e:
        raise RetrievalError(str(e)) from e
    peak = float(np.max(np.abs(signal))) if len(signal) else 0.0
    if peak < SILENCE_PEAK:
        level = "all samples are zero" if peak == 0 else f"peak {20 * np.log10(peak):.0f} dBFS"
        raise RetrievalError(f"{path} is silent ({level}): nothing to match.")
    spec = audio_lib.spectrogram(signal)
    if len(spec.T) and float(np.median(spec.max(axis=0))) < BAND_SILENCE:
        raise RetrievalError(f"{path} holds no sound between 30 and 6,000 Hz in most of its frames (a constant "
                             "or DC signal?): nothing to match.")
    if spec.shape[1] < frames:
        raise RetrievalError(
            f"{path} lasts {len(signal) / audio_lib.SAMPLE_RATE:.2f} s, shorter than one excerpt of the model "
            f"({frames} frames = {frames / audio_lib.FPS:.2f} s)."
        )
    return spec


def excerpt_starts(num_frames, frames, count):
    """First frames of up to `count` evenly spaced excerpts of `frames` frames (fewer if the audio is short)."""
    return np.unique(np.round(np.linspace(0, num_frames - frames, count)).astype(int))


def index_recordings(encoders, paths, hop=DEFAULT_AUDIO_HOP, log=None):
    """Embeds excerpts every `hop` frames of each recording; unreadable or too short ones are skipped.

    Returns:
        (index, sources, skipped) as `index_scores`, with columns `recording` and `time` (the excerpt's centre,
        in seconds: an excerpt is centred on the score position it matches).
    """

    def add(index, recording, spec):
        starts = np.arange(0, spec.shape[1] - encoders.frames + 1, hop)
        index.add(
            encoders.audio(windows.excerpts(spec, starts + encoders.frames // 2, encoders.frames)),
            recording=[recording] * len(starts), time=(starts + encoders.frames // 2) / audio_lib.FPS,
        )
        return f"recording {recording}, {spec.shape[1] / audio_lib.FPS:.1f} s, {len(starts)} excerpts"

    return _index_files(encoders, paths, lambda path: load_spectrogram(path, encoders.frames), RetrievalError,
                        add, log)


# ---------------------------------------------------------------------------------------------------------------
# Queries


def identify(index, encoders, spec, excerpts=100, k=25, sequences=None):
    """Identifies the piece of a recording and follows it through the score.

    Evenly spaced excerpts of the recording are embedded; each piece is scored by its best monotone path
    through its snippets (`matching`: one snippet per excerpt in time order, hub-normalised similarities, mean
    over the excerpts), so that pieces of any length compete on equal terms. The best piece's path is the
    timeline: where each excerpt sounds on the page. Each excerpt's `k` nearest snippets (SPEC's vote) are kept
    as well, for inspection.

    Args:
        index: a sheet `SnippetIndex` made with `encoders`' model.
        encoders: an `Encoders`.
        spec: the recording's (92, N) spectrogram, N >= `encoders.frames`.
        excerpts: number of evenly spaced excerpts.
        k: snippets retrieved per excerpt.
        sequences: the index's `matching.PieceSequences`, to reuse across queries (made here if None).

    Returns:
        A dict: "pieces", [{"piece", "score", "votes"}] best path first; "match", {"piece" (None when no piece
        is clearly ahead), "confidence" in [0, 1], "margin"}; "timeline", one {"time", "page", "system", "x"}
        per excerpt (centre time in seconds; page and system from 1) along the best piece's path; "excerpts",
        one dict per excerpt with "start", "end" and "hits", its k nearest snippets [{"piece", "page",
        "system", "x", "score"}]; "starts", the first frame of each excerpt, and "frames", their length.
    """
    starts, queries = embed_excerpts(encoders, spec, excerpts)
    return match_excerpts(index, queries, starts, encoders.frames, k, sequences)


def embed_excerpts(encoders, spec, count):
    """(starts, (n, 32) embeddings) of up to `count` evenly spaced excerpts of a spectrogram: what `identify`
    matches, for callers that match the same excerpts more than once (`match_excerpts`)."""
    starts = excerpt_starts(spec.shape[1], encoders.frames, count)
    return starts, encoders.audio(windows.excerpts(spec, starts + encoders.frames // 2, encoders.frames))


def match_excerpts(index, queries, starts, frames, k=25, sequences=None, smooth=SMOOTH_EXCERPTS):
    """`identify` from the excerpts' embeddings: (n, 32) `queries` of excerpts starting at frames `starts`.

    `smooth`: half-width, in excerpts, of the local line fitted through the path's positions (0: the snippet
    centres themselves, on the index's `--hop` grid).
    """
    queries = index_lib.normalize(queries)
    similarities, rows = index.search(queries, k)
    meta = index.rows(rows)
    votes = dict(index_lib.vote(meta["piece"], similarities))
    if sequences is None:
        sequences = matching.PieceSequences(index.metadata["piece"], index.metadata["strip_x"])
    names = _candidates(sequences, meta["piece"], len(index))
    order, segments = sequences.select(names)
    similarity = matching.normalise_hubs(queries @ np.asarray(index.embeddings[order], np.float32).T)
    spacing = float(np.mean(np.diff(starts))) / audio_lib.FPS if len(starts) > 1 else 1.0
    max_step = matching.max_step_for(spacing, _snippet_hop(index.metadata["strip_x"], order, segments))
    scores, ends, steps = matching.path_scores(similarity, segments, max_step)
    ranked = np.argsort(-scores, kind="stable")
    pieces = [{"piece": str(names[r]), "score": round(float(scores[r]), 4), "votes": int(votes.get(names[r], 0))}
              for r in ranked]
    centres = (np.asarray(starts) + frames / 2) / audio_lib.FPS
    timeline = _timeline(index, order, segments[ranked[0]], matching.trace(steps, ends[ranked[0]]), centres, smooth)
    results = []
    for i, start in enumerate(starts):
        hits = [
            {"piece": str(meta["piece"][i, j]), "page": int(meta["page"][i, j]) + 1,
             "system": int(meta["system"][i, j]) + 1, "x": round(float(meta["page_x"][i, j]), 1),
             "score": round(float(similarities[i, j]), 4)}
            for j in range(rows.shape[1])
        ]
        results.append({"start": start / audio_lib.FPS, "end": (start + frames) / audio_lib.FPS, "hits": hits})
    clear, confidence, margin = _decide(scores[ranked])
    match = {"piece": pieces[0]["piece"] if clear else None, "confidence": confidence, "margin": margin}
    return {"pieces": pieces, "match": match, "timeline": timeline, "excerpts": results, "frames": int(frames),
            "starts": np.asarray(starts).tolist()}


def _timeline(index, order, segment, columns, times, smooth):
    """Page positions of a path: its snippet centres smoothed in time, placed on the nearest snippet's system."""
    piece_rows = order[segment[0]:segment[1]]
    strip_x = np.asarray(index.metadata["strip_x"][piece_rows], np.float64)
    positions = matching.smooth_positions(times, strip_x[columns - segment[0]], smooth)
    nearest = np.clip(np.searchsorted(strip_x, positions), 0, len(strip_x) - 1)
    left = np.maximum(nearest - 1, 0)
    nearest = np.where(np.abs(strip_x[left] - positions) < np.abs(strip_x[nearest] - positions), left, nearest)
    meta = index.rows(piece_rows[nearest])
    page_x = meta["page_x"] + (positions - strip_x[nearest])
    # The nearest snippet's measure (snippets are --hop px apart; a measure is usually several hops wide).
    bars = meta.get("measure", np.full(len(times), ""))
    return [{"time": round(float(t), 2), "page": int(p) + 1, "system": int(y) + 1, "x": round(float(x), 1),
             **({"measure": str(m)} if m else {})}
            for t, p, y, x, m in zip(times, meta["page"], meta["system"], page_x, bars)]


def _candidates(sequences, hit_pieces, rows):
    """The pieces to align: all of them up to `DENSE_ROWS` index rows, else those most excerpts' hits name."""
    if rows <= DENSE_ROWS:
        return sequences.names
    # Count each piece once per excerpt, so that a long piece's many near hits do not crowd out the rest.
    named = collections.Counter(p for row in hit_pieces.tolist() for p in set(row))
    return np.array(sorted(p for p, _ in named.most_common(CANDIDATES)))


def _snippet_hop(strip_x, order, segments):
    """The px between neighbouring snippets of the index (the `--hop` it was built with)."""
    start, stop = max(segments, key=lambda s: s[1] - s[0])
    gaps = np.diff(np.asarray(strip_x[order[start:stop]], np.float64))
    return float(np.median(gaps)) if len(gaps) else float(sheet.SNIPPET_HOP)


def _decide(ranked_scores):
    """(clear, confidence in [0, 1], margin) of the best of `ranked_scores`, for `identify`'s "match".

    The margin between the best and the second-best path is compared with the spread of all the other
    pieces' scores: a recording of an indexed piece lifts one path far above the crowd, while noise or an
    unknown piece leaves the best path one of many.
    """
    best = float(ranked_scores[0])
    if len(ranked_scores) < 2:
        return True, 1.0, None
    others = np.asarray(ranked_scores[1:], np.float64)
    margin = best - float(others[0])
    spread = float(np.std(others)) if len(others) > 1 else abs(float(others[0]))
    z = margin / max(spread, 1e-6)
    confidence = float(1.0 - np.exp(-z / NO_MATCH_Z)) if z > 0 else 0.0
    return bool(z >= NO_MATCH_Z), round(confidence, 3), round(margin, 4)


def locate(index, encoders, snippets, positions, k=25):
    """Finds sheet snippets in indexed recordings.

    Returns:
        A dict: "recordings", [{"recording", "votes"}] most votes first; "snippets", one dict per snippet with its
        position (page/system/x, or None for a crop) and "hits" [{"recording", "time", "score"}] best first.
    """
    similarities, rows = index.search(encoders.sheet(snippets), k)
    meta = index.rows(rows)
    ranking = index_lib.vote(meta["recording"], similarities)
    results = [
        {"position": position,
         "hits": [{"recording": str(meta["recording"][i, j]), "time": round(float(meta["time"][i, j]), 2),
                   "score": round(float(similarities[i, j]), 4)} for j in range(rows.shape[1])]}
        for i, position in enumerate(positions)
    ]
    return {"recordings": [{"recording": r, "votes": v} for r, v in ranking], "snippets": results}


# ---------------------------------------------------------------------------------------------------------------
# Plot


def plot_identification(result, sources, path):
    """Draws the timeline of `identify` over the best piece's pages (`plots.plot_score_following`).

    Raises:
        RetrievalError: the best piece's score file is gone.
    """
    from keras_asr import plots

    piece = result["pieces"][0]["piece"]
    source = sources.get(piece)
    if not source or not os.path.isfile(source):
        raise RetrievalError(f"Cannot plot: the score file of {piece!r} ({source}) is not there any more.")
    pages = sheet.load_pages(source)
    fig = plots.plot_score_following(result, pages, piece, lambda page: sheet.detect_systems(pages[page]))
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plots.plt.close(fig)
    return {"piece": piece, "pages": sorted({entry["page"] for entry in result["timeline"]})}


def follow_video(result, sources, audio_path, path, fps=10):
    """Writes a score-following video of a recording with its sound (frames: `plots.score_following_frames`).

    Raises:
        RetrievalError: no ffmpeg on the PATH, the best piece's score file is gone, or ffmpeg failed.
    """
    import shutil
    import subprocess

    from keras_asr import plots

    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RetrievalError("Cannot write a video: ffmpeg is not installed (Debian: apt-get install ffmpeg).")
    piece = result["pieces"][0]["piece"]
    source = sources.get(piece)
    if not source or not os.path.isfile(source):
        raise RetrievalError(f"Cannot draw the video: the score file of {piece!r} ({source}) is not there any more.")
    pages = sheet.load_pages(source)
    duration = len(audio_lib.load_audio(audio_path)) / audio_lib.SAMPLE_RATE
    frames = plots.score_following_frames(result, pages, lambda page: sheet.detect_systems(pages[page]), duration,
                                          fps)
    first = next(frames)
    # Written beside the target, then renamed: an interrupted run leaves no half video.
    partial = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.partial.mp4")
    command = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{first.shape[1]}x{first.shape[0]}", "-r", str(fps), "-i", "-", "-i", os.fspath(audio_path),
               "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
               partial]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for frame in itertools.chain([first], frames):
            process.stdin.write(frame.tobytes())
        process.stdin.close()
        error = process.stderr.read().decode(errors="replace").strip()
        if process.wait() != 0:
            raise RetrievalError(f"ffmpeg could not write {path}: {error.splitlines()[-1:] or 'no message'}")
        os.replace(partial, path)
    finally:
        if process.poll() is None:
            process.kill()
        if os.path.exists(partial):
            os.remove(partial)
    return {"piece": piece, "seconds": duration}
