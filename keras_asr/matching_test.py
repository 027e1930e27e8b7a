"""Tests of the sequence matcher on similarity matrices built to show one property each.

The matcher's job on real music (a recording found in its score) is tested in retrieval_test.py and
cli_test.py; here each test builds the similarities that make one rule visible: order, step limits, piece
boundaries, length normalisation and the hub correction.
"""

import numpy as np
import pytest

from keras_asr import matching

pytestmark = pytest.mark.single_backend


def _band(n, m, slope, offset=0, strength=1.0):
    """(n, m) similarities that are `strength` along column = offset + slope * row, else 0."""
    similarity = np.zeros((n, m), np.float32)
    for i in range(n):
        j = int(round(offset + slope * i))
        if 0 <= j < m:
            similarity[i, j] = strength
    return similarity


def test_best_path_follows_the_music_in_order_within_the_step_limit():
    similarity = _band(20, 60, slope=1.5, offset=10)
    path = matching.best_path(similarity, max_step=2)
    np.testing.assert_array_equal(path.columns, np.round(10 + 1.5 * np.arange(20)).astype(int))
    assert path.score == pytest.approx(1.0)
    # Too small a step limit cannot keep up with the music: the path falls behind and scores less.
    slow = matching.best_path(similarity, max_step=1)
    assert np.all(np.diff(slow.columns) <= 1) and slow.score < 0.7


def test_path_never_goes_back():
    # Row i matches column 20 - i (the music played backwards): a monotone path can collect only one of them.
    similarity = np.fliplr(_band(15, 21, slope=1.0, offset=6))
    path = matching.best_path(similarity, max_step=3)
    assert np.all(np.diff(path.columns) >= 0)
    assert path.score == pytest.approx(1 / 15)


def test_paths_stay_inside_their_piece():
    # The first half of the excerpts matches the end of piece A, the second half the start of piece B:
    # concatenated they would form one perfect path, but each piece only gets its own half.
    similarity = np.zeros((10, 20), np.float32)
    for i in range(5):
        similarity[i, 5 + i] = 1.0  # piece A = columns 0-9
        similarity[5 + i, 10 + i] = 1.0  # piece B = columns 10-19
    scores, ends, steps = matching.path_scores(similarity, [(0, 10), (10, 20)], max_step=2)
    np.testing.assert_allclose(scores, [0.5, 0.5])
    for end, (start, stop) in zip(ends, [(0, 10), (10, 20)]):
        columns = matching.trace(steps, end)
        assert start <= columns.min() and columns.max() < stop


def test_scores_do_not_grow_with_piece_length():
    # A short piece that matches every excerpt beats a piece 50 times longer that matches half of them.
    short = _band(20, 30, slope=1.0, offset=5, strength=0.8)
    long = np.zeros((20, 1500), np.float32)
    long[:10] = _band(10, 1500, slope=1.0, offset=700, strength=1.0)
    scores, _, _ = matching.path_scores(np.hstack([short, long]), [(0, 30), (30, 1530)], max_step=2)
    assert scores[0] == pytest.approx(0.8) and scores[1] == pytest.approx(0.5)


def test_hub_correction_takes_away_the_advantage_of_snippets_near_everything():
    # Column 0 is a hub (a system start): 0.65 to every excerpt. The true passage runs along columns 10-29 at 0.5.
    similarity = _band(20, 40, slope=1.0, offset=10, strength=0.5) + 0.1
    similarity[:, 0] = 0.65
    segments = [(0, 5), (5, 40)]  # the hub's piece, and the piece being played
    raw, _, _ = matching.path_scores(similarity, segments, max_step=2)
    assert raw[0] > raw[1]  # plain similarities: staying on the hub wins
    corrected, ends, steps = matching.path_scores(matching.normalise_hubs(similarity), segments, max_step=2)
    assert corrected[1] > corrected[0]
    np.testing.assert_array_equal(matching.trace(steps, ends[1]), np.arange(10, 30))


def test_max_step_for_covers_fast_music():
    assert matching.max_step_for(0.25, 50) == 3  # 600 px/s * 0.25 s = 150 px = 3 snippets
    assert matching.max_step_for(0.01, 50) == 1


def test_piece_sequences_group_rows_by_piece_in_strip_order():
    pieces = np.array(["b", "a", "b", "a", "c", "b"])
    strip_x = np.array([75, 25, 25, 75, 25, 125], np.float32)
    sequences = matching.PieceSequences(pieces, strip_x)
    assert sequences.names.tolist() == ["a", "b", "c"] and len(sequences) == 3
    assert sequences.order.tolist() == [1, 3, 2, 0, 5, 4]
    np.testing.assert_array_equal(sequences.segments, [[0, 2], [2, 5], [5, 6]])
    order, segments = sequences.select(["c", "a"])
    assert order.tolist() == [4, 1, 3]
    np.testing.assert_array_equal(segments, [[0, 1], [1, 3]])


def test_smoothed_positions_are_read_at_the_times_asked_and_stay_monotone():
    # A path on 50 px snippet steps of music moving at 100 px/s, excerpts every 0.25 s.
    times = np.arange(20) * 0.25
    positions = np.round(100 * times / 50) * 50
    at_centre = matching.smooth_positions(times, positions, 4)
    assert np.abs(at_centre[4:-4] - 100 * times[4:-4]).max() < 15  # the line, not the 50 px steps
    # Read at the start of each second (a note held for a second): one position per note.
    held = matching.smooth_positions(times, positions, 4, at=np.floor(times))
    assert np.all(np.diff(held) >= 0)
    assert np.abs(held[4:-4] - 100 * np.floor(times[4:-4])).max() < 15
    with pytest.raises(ValueError, match="one time per position"):
        matching.smooth_positions(times, positions, 4, at=times[:-1])
