"""Sequence matching: a recording's excerpts against each piece's snippets, in the order the music runs.

Plain voting (SPEC's piece identification) lets every excerpt pick its nearest snippets on its own. It rewards
long pieces, which own more snippets, and "hub" snippets that are near every excerpt (system starts with clef
and key, white margins). The matcher here keeps what voting throws away:

- Order. Each excerpt, in time order, is assigned one snippet of the piece so that positions never go back and
  advance by at most `max_step` snippets between excerpts (a subsequence alignment in the spirit of the
  subsequence DTW that Carvalho & Widmer used for piece identification, EUSIPCO 2021). A piece's score is the
  mean similarity along its best path, so every piece is judged on the same number of excerpts, whatever its
  length, and the path is where the recording is on the page.
- Hubs. Each snippet's similarities are taken relative to its mean similarity to all excerpts of the query
  (a column normalisation, close to CSLS's hubness correction with the query as the reference set): a snippet
  that matches everything gains nothing.

Example:

>>> similarity = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.1], [0.0, 0.3, 0.9]])
>>> path = best_path(normalise_hubs(similarity), max_step=2)
>>> path.columns.tolist(), round(path.score, 2)
([0, 1, 2], 0.5)
"""

import dataclasses

import numpy as np

# Score px per second of audio a path may run at: beyond the fastest passages of the corpus at tempo x2.
MAX_SPEED = 600.0


@dataclasses.dataclass
class Path:
    """One piece's best alignment.

    Attributes:
        score: mean (hub-normalised) similarity along the path: what pieces are ranked by.
        columns: (n,) snippet column of the piece for each excerpt, non-decreasing.
    """

    score: float
    columns: np.ndarray


def max_step_for(excerpt_spacing_s, snippet_hop_px, max_speed=MAX_SPEED):
    """Snippets a path may advance between two excerpts `excerpt_spacing_s` apart (at least 1)."""
    return max(1, int(np.ceil(max_speed * excerpt_spacing_s / snippet_hop_px)))


def normalise_hubs(similarity):
    """Subtracts each column's (snippet's) mean similarity over the rows (the query's excerpts)."""
    similarity = np.asarray(similarity, np.float32)
    return similarity - similarity.mean(axis=0, keepdims=True)


def path_scores(similarity, segments, max_step):
    """Best-path score of every segment (piece) at once.

    Args:
        similarity: (n, m) similarities of n excerpts (time order) to m snippets; the snippets of each piece
            are contiguous and in strip order.
        segments: (p, 2) [start, stop) column range of each piece.
        max_step: the most snippets a path advances from one excerpt to the next.

    Returns:
        (scores (p,), ends (p,), backpointers (n, m) int8): each piece's mean similarity along its best path,
        the column where that path ends, and the steps to trace it (`trace`).
    """
    similarity = np.asarray(similarity, np.float32)
    n, m = similarity.shape
    segments = np.asarray(segments, np.int64).reshape(-1, 2)
    # A column's own segment start: a path may not step in from the piece before it.
    first = np.zeros(m, np.int64)
    for start, stop in segments:
        first[start:stop] = start
    # blocked[d, j]: column j cannot be reached by a step of d (it would come from another piece).
    blocked = (np.arange(m)[None, :] - np.arange(max_step + 1)[:, None]) < first[None, :]
    total = similarity[0].copy()
    steps = np.zeros((n, m), np.int8)
    shifted = np.empty((max_step + 1, m), np.float32)
    for i in range(1, n):
        # shifted[d, j] = total[j - d]: the score of arriving at column j with a step of d.
        shifted[0] = total
        for d in range(1, max_step + 1):
            shifted[d, :d] = -np.inf
            shifted[d, d:] = total[:-d]
        shifted[blocked] = -np.inf
        steps[i] = np.argmax(shifted, axis=0)
        total = np.take_along_axis(shifted, steps[i][None].astype(np.int64), axis=0)[0] + similarity[i]
    scores = np.empty(len(segments), np.float32)
    ends = np.empty(len(segments), np.int64)
    for k, (start, stop) in enumerate(segments):
        end = start + int(np.argmax(total[start:stop]))
        scores[k], ends[k] = total[end] / n, end
    return scores, ends, steps


def trace(steps, end):
    """The columns of the path that ends at column `end` (see `path_scores`)."""
    columns = np.empty(len(steps), np.int64)
    columns[-1] = end
    for i in range(len(steps) - 1, 0, -1):
        columns[i - 1] = columns[i] - steps[i, columns[i]]
    return columns


def smooth_positions(times, positions, half_window, at=None):
    """A path's positions fitted by a line through each `half_window` neighbours on either side, kept monotone.

    A path jumps between snippet centres `hop` px apart while the music moves on smoothly; the local fit places
    each excerpt between them. `at`: (n,) non-decreasing times at which to read each excerpt's line instead of
    its own time (`identification` reads it at the last onset, where the sounding note is written).

    >>> smooth_positions([0, 1, 2, 3], [0, 100, 200, 300], 1, at=[0, 0, 2, 2]).round(6).tolist()
    [0.0, 0.0, 200.0, 200.0]
    """
    times, positions = np.asarray(times, np.float64), np.asarray(positions, np.float64)
    at = times if at is None else np.asarray(at, np.float64)
    if at.shape != times.shape:
        raise ValueError(f"`at` needs one time per position, got {at.shape} for {times.shape}.")
    if half_window < 1 or len(positions) < 3:
        return positions
    fitted = np.empty_like(positions)
    for i in range(len(positions)):
        window = slice(max(0, i - half_window), i + half_window + 1)
        t, x = times[window], positions[window]
        if np.ptp(t) == 0:
            fitted[i] = x.mean()
            continue
        slope, intercept = np.polyfit(t, x, 1)
        fitted[i] = slope * at[i] + intercept
    return np.clip(np.maximum.accumulate(fitted), positions.min(), positions.max())


def best_path(similarity, max_step):
    """The best path through one piece's (n, m) similarities."""
    scores, ends, steps = path_scores(similarity, [(0, np.shape(similarity)[1])], max_step)
    return Path(float(scores[0]), trace(steps, ends[0]))


class PieceSequences:
    """The rows of a sheet index grouped by piece, each piece's snippets in strip order.

    Built once per index (sorting a million rows takes a moment) and reused by every query.

    Args:
        pieces: (rows,) piece of each index row.
        strip_x: (rows,) strip column of each row's snippet centre.

    Attributes:
        names: (p,) piece names, sorted.
        order: (rows,) index rows, piece by piece, each piece left to right on its strip.
        segments: (p, 2) [start, stop) of each piece in `order`.
    """

    def __init__(self, pieces, strip_x):
        pieces = np.asarray(pieces)
        self.names, inverse = np.unique(pieces, return_inverse=True)
        self.order = np.lexsort((np.asarray(strip_x), inverse))
        counts = np.bincount(inverse, minlength=len(self.names))
        stops = np.cumsum(counts)
        self.segments = np.stack([stops - counts, stops], axis=1)

    def __len__(self):
        return len(self.names)

    def select(self, names):
        """(order, segments) of the given pieces only, in the order given."""
        wanted = np.searchsorted(self.names, names)
        parts = [self.order[start:stop] for start, stop in self.segments[wanted]]
        lengths = np.array([len(part) for part in parts], np.int64)
        stops = np.cumsum(lengths)
        return np.concatenate(parts), np.stack([stops - lengths, stops], axis=1)
