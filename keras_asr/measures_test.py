"""Tests for measure numbers on engraved scores (verovio's SVG) and on their unrolled strips."""

import music21
import numpy as np
import pytest

from keras_asr import measures
from keras_asr import pages as pages_lib
from keras_asr import sheet
from keras_asr.testing import fixture_root

pytestmark = pytest.mark.single_backend


@pytest.fixture(scope="module")
def chorale(tmp_path_factory):
    """Bach's chorale BWV 66.6 as MusicXML (a pickup measure 0, then 1-9), its pages, measures and strip."""
    path = tmp_path_factory.mktemp("measures") / "bwv66.6.musicxml"
    music21.corpus.parse("bach/bwv66.6").write("musicxml", fp=path)
    pages, spans = pages_lib.load_score(path)
    return path, pages, spans, sheet.unroll(pages)


def test_each_system_lists_its_measures_left_to_right(chorale):
    _, pages, spans, score = chorale
    assert len(spans) == len(pages) and [len(s) for s in spans] == score.systems_per_page
    numbers = [int(n) for page in spans for system in page for _, _, n in system]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) and numbers[0] == 0
    for system, page_system in zip(score.systems, (s for page in spans for s in page)):
        # The measures tile the staff lines the detector found: first left edge to last right edge.
        assert abs(page_system[0][0] - system.left) <= 2 and abs(page_system[-1][1] - system.right) <= 2
        assert all(right <= following + 0.5 for (_, right, _), (following, _, _) in zip(page_system, page_system[1:]))


def test_strip_columns_get_the_measure_they_lie_in(chorale):
    _, _, spans, score = chorale
    x = np.arange(0, score.width, 10)
    numbers = measures.numbers_at(score, spans, x).astype(int)
    assert np.all(np.diff(numbers) >= 0) and numbers[0] == 0 and numbers[-1] == 9
    # The middle of each measure of the first system maps back to it.
    for left, right, number in spans[0][0]:
        assert measures.numbers_at(score, spans, [(left + right) / 2 - score.systems[0].left]) == [number]


def test_pages_without_an_engraving_have_no_measures(chorale):
    _, pages, spans, score = chorale
    assert set(measures.numbers_at(score, None, [0, 500, score.width - 1])) == {""}
    # A page whose systems the detector counts differently from the engraving: unknown, not shifted numbers.
    assert set(measures.numbers_at(score, [spans[0][:1]], [0, score.width - 1])) == {""}
    page = f"{fixture_root()}/bach__bwv269__chorale/scores/bach__bwv269__chorale_ly/img/01.png"
    assert pages_lib.load_score(page)[1] is None
