import shutil

import numpy as np
import pytest
from music21 import corpus

from tfds_msmd.corpus import alignment_check, engrave, lilypond, sources, testing

pytestmark = [pytest.mark.single_backend,
              pytest.mark.skipif(shutil.which("lilypond") is None, reason="LilyPond not installed")]


@pytest.fixture(scope="module")
def prelude():
    """The first four measures of BWV 846 (a keyboard prelude: held bass notes under broken chords)."""
    return sources.grand_staff(corpus.parse("bach/bwv846.mxl"), max_measures=4)


@pytest.fixture(scope="module")
def engraving(prelude):
    return lilypond.engrave(prelude)


def test_source_writes_each_staff_and_pitch_where_it_is_linked(prelude):
    text, notes = lilypond.lilypond_source(prelude)
    lines = text.split("\n")
    assert text.count("\\new Staff") == 2 and "\\clef \"bass\"" in text
    for n in notes:  # every recorded position holds a pitch name
        assert lines[n.line - 1][n.column] in "abcdefg"
    assert {n.staff for n in notes} == {0, 1}


def test_lilypond_and_verovio_engrave_the_same_notes_on_their_staves(prelude, engraving):
    reference = engrave.engrave(prelude)
    key = lambda heads: sorted((round(h.onset, 4), h.pitch, h.staff, round(h.duration, 4)) for h in heads)  # noqa: E731
    assert key(engraving.noteheads) == key(reference.noteheads)
    # Staff assignment by position too (musicxml2ly put every note on the upper staff): the lower staff's
    # noteheads lie below the upper staff's in every system.
    for system in {h.system for h in engraving.noteheads}:
        upper = [h.centre[0] for h in engraving.noteheads if h.system == system and h.staff == 0]
        lower = [h.centre[0] for h in engraving.noteheads if h.system == system and h.staff == 1]
        assert max(upper) < min(lower)


def test_notehead_boxes_are_inked_and_inside_their_systems(engraving):
    page = engraving.pages[0]
    assert page.dtype == np.uint8 and page.shape == (1181, 835) and np.median(page) == 255
    for h in engraving.noteheads:
        (top, left), _, (bottom, right), _ = engraving.systems[h.page][h.system]
        y, x = h.centre
        assert top <= y <= bottom and left <= x <= right
        assert page[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].min() < 128
    assert all(6 < h.height < 9 for h in engraving.noteheads)  # LilyPond's 20 pt staff: a 7 px staff space


def test_tempo_marks_set_the_onsets():
    from music21 import tempo

    score = sources.grand_staff(corpus.parse("bach/bwv269"), max_measures=2)
    score.parts[0].getElementsByClass("Measure")[0].insert(0, tempo.MetronomeMark(number=60))
    heads = lilypond.engrave(score).noteheads
    assert sorted({round(h.onset, 4) for h in heads})[:2] == [0.0, 1.0]  # 60 bpm: one second per quarter


def test_lilypond_corpus_aligns_as_exactly_as_verovio(tiny_corpus, tmp_path):
    # The same excerpts and renders as the verovio-engraved session corpus. The control rate depends on the
    # music (held notes, repeated pitches), so LilyPond is held to verovio's figures on the same notes.
    root = testing.make_tiny_corpus(tmp_path, n_pieces=2, max_measures=4, engraving="lilypond")
    summary = alignment_check.check_alignment(root, verbose=False)
    reference = alignment_check.check_alignment(tiny_corpus, verbose=False)
    assert summary.checked == reference.checked > 50 and summary.passed >= 0.95
    assert abs(summary.passed - reference.passed) < 0.02 and abs(summary.control - reference.control) < 0.05
    # On four-measure excerpts the control rate is near 30 % for both engravers; over the seven pieces of the
    # small config it is 12.6 % for both (see the README).
    assert summary.control < 0.5
