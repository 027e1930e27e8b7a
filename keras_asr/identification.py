"""Queries of the retrieval application: which piece a recording plays and where (`identify`), and where a
snippet of sheet music sounds in indexed recordings (`locate`).

A query embeds evenly spaced excerpts of the recording; every candidate piece is scored by its best monotone
path through its snippets (`matching`), the best path is the timeline, and `NO_MATCH_Z` decides whether the
best piece is clearly ahead. Results count pages and systems from 1, as printed scores do; the index stores
them from 0, as `sheet.UnrolledScore` does.

Example:

```python
result = identify(index, encoders, recordings.load_spectrogram("take1.flac", encoders.frames))
result["match"]["piece"]  # "bwv269", or None when no piece is clearly ahead
result["timeline"][0]     # {"time": ..., "page": 1, "system": 1, "x": ...}: where the first excerpt sounds
```
"""

import collections

import numpy as np

from keras_asr import audio as audio_lib
from keras_asr import index as index_lib
from keras_asr import matching
from keras_asr import windows
from keras_asr.geometry import QUERY_RATES
from keras_asr.geometry import SNIPPET_HOP
from keras_asr.recordings import excerpt_starts

# Up to this many snippets every piece is aligned with a query (~0.1 s); beyond, the CANDIDATES pieces that
# most excerpts' nearest snippets name.
DENSE_ROWS = 200_000
CANDIDATES = 100
# The best path must lead the second by this many standard deviations of the other pieces' scores.
NO_MATCH_Z = 2.0
# The confidence of a margin of exactly NO_MATCH_Z deviations (`_decide`): answers have at least this (0.632).
ANSWER_CONFIDENCE = float(1.0 - np.exp(-1.0))
# Half-width (in excerpts) of the line fitted through a path's positions: ~1 s of a 30 s query's 100 excerpts.
SMOOTH_EXCERPTS = 4
# Excerpts a tempo search tries each rate on before matching all of them at the best one (`identify`'s probe).
PROBE_EXCERPTS = 25


def identify(index, encoders, spec, excerpts=100, k=25, sequences=None, rates=QUERY_RATES, smooth=SMOOTH_EXCERPTS,
             probe="auto", snap_onsets=True):
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
        rates: tempo search: the excerpts are cut as if the recording were played `rate` times as fast
            (`windows.excerpts`; 2 turns a performance at half the score's tempo into one at its tempo), once
            per rate, and the rate whose best path scores highest gives the answer (default `QUERY_RATES`,
            0.5-2, as `keras-asr query`; `(1.0,)`: no search).
        probe: with several rates, choose the rate on this many excerpts and match all `excerpts` at that rate
            only (about 2x the work of one rate instead of one per rate, for a 1 s answer from a million
            snippets; it chose worse rates than the full search on the varied test split); None: match all
            excerpts at every rate; "auto": `PROBE_EXCERPTS` above `DENSE_ROWS` index rows, else None.
        smooth: half-width in excerpts of the line fitted through the path's positions.
        snap_onsets: place each excerpt where the note sounding at its centre is written: the path's line is
            read at the last onset the recording's spectrogram shows (`audio.detect_onsets`) instead of at the
            centre, so that the cursor waits on a held note as a score does; False: at the centre.

    Returns:
        A dict: "pieces", [{"piece", "score", "votes"}] best path first; "match", {"piece" (None when no piece
        is clearly ahead), "confidence" in [0, 1], "margin"}; "timeline", one {"time", "page", "system", "x"}
        per excerpt (centre time in seconds; page and system from 1; where the note sounding at that time is
        written) along the best piece's path; "excerpts",
        one dict per excerpt with "start", "end" and "hits", its k nearest snippets [{"piece", "page",
        "system", "x", "score"}]; "starts", the first frame of each excerpt, and "frames", their length;
        "rate", the tempo search's rate that won (an excerpt's "start" and "end" are the span of the recording
        it read at that rate).
    """
    if sequences is None:
        sequences = matching.PieceSequences(index.metadata["piece"], index.metadata["strip_x"])
    rates = tuple(rates)
    if probe == "auto":
        probe = PROBE_EXCERPTS if len(index) > DENSE_ROWS else None
    onsets = audio_lib.detect_onsets(spec) if snap_onsets else None
    def best_path(result):
        return result["pieces"][0]["score"]

    if len(rates) > 1 and probe and probe < excerpts:
        # Choose the rate on a few excerpts, then match them all at that rate only.
        rates = (max(rates, key=lambda rate: best_path(_match_at(index, encoders, spec, probe, k, sequences, smooth,
                                                                  rate, onsets))),)
    # max keeps the first of equal scores, as the rates are listed.
    return max((_match_at(index, encoders, spec, excerpts, k, sequences, smooth, rate, onsets) for rate in rates),
               key=best_path)


def _match_at(index, encoders, spec, excerpts, k, sequences, smooth, rate, onsets=None):
    """`match_excerpts` of `excerpts` excerpts cut at tempo `rate`, with "rate" and each excerpt's span."""
    starts, queries = embed_excerpts(encoders, spec, excerpts, rate)
    result = match_excerpts(index, queries, starts, encoders.frames, k, sequences, smooth, onsets) | {"rate": rate}
    for excerpt, start in zip(result["excerpts"], starts):  # the recording's span the excerpt read
        centre, half = start + encoders.frames // 2, encoders.frames * rate / 2
        excerpt["start"], excerpt["end"] = (max(centre - half, 0) / audio_lib.FPS,
                                            min(centre + half, spec.shape[1]) / audio_lib.FPS)
    return result


def embed_excerpts(encoders, spec, count, rate=1.0):
    """(starts, (n, 32) embeddings) of up to `count` evenly spaced excerpts of a spectrogram: what `identify`
    matches, for callers that match the same excerpts more than once (`match_excerpts`).

    With `rate` != 1 each excerpt covers `rate` times its frames of the recording (`windows.excerpts`), centred
    where the excerpt of `encoders.frames` frames starting at `starts` would be.
    """
    frames = encoders.frames
    span = min(int(np.ceil(frames * rate)), spec.shape[1])  # recording frames an excerpt reads
    centres = excerpt_starts(spec.shape[1], span, count) + span // 2
    cut = windows.excerpts(spec, centres, frames, None if rate == 1 else np.full(len(centres), float(rate)))
    return centres - frames // 2, encoders.audio(cut)


def match_excerpts(index, queries, starts, frames, k=25, sequences=None, smooth=SMOOTH_EXCERPTS, onsets=None):
    """`identify` from the excerpts' embeddings: (n, 32) `queries` of excerpts starting at frames `starts`.

    `smooth`: half-width, in excerpts, of the local line fitted through the path's positions (0: the snippet
    centres themselves, on the index's `--hop` grid). `onsets`: ascending onset frames of the recording (the
    frames `starts` count); each excerpt's line is read at the last one at or before its centre (`identify`'s
    `snap_onsets`).
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
    timeline = _timeline(index, order, segments[ranked[0]], matching.trace(steps, ends[ranked[0]]), centres, smooth,
                         sounding_since(np.asarray(starts) + frames // 2, onsets))
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


def sounding_since(centres, onsets):
    """Seconds of the last onset at or before each centre frame (the centre itself before the first onset).

    >>> sounding_since(np.array([5, 12, 30]), np.array([10, 20])).tolist()
    [0.25, 0.5, 1.0]
    """
    centres = np.asarray(centres, np.int64)
    if onsets is None or len(onsets) == 0:
        return centres / audio_lib.FPS
    onsets = np.asarray(onsets, np.int64)
    last = np.searchsorted(onsets, centres, side="right") - 1
    return np.where(last >= 0, onsets[np.maximum(last, 0)], centres) / audio_lib.FPS


def _timeline(index, order, segment, columns, times, smooth, read_at=None):
    """Page positions of a path: its snippet centres smoothed in time (the line read at `read_at`, default
    `times`), placed on the nearest snippet's system."""
    piece_rows = order[segment[0]:segment[1]]
    strip_x = np.asarray(index.metadata["strip_x"][piece_rows], np.float64)
    positions = matching.smooth_positions(times, strip_x[columns - segment[0]], smooth, at=read_at)
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
    return float(np.median(gaps)) if len(gaps) else float(SNIPPET_HOP)


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
