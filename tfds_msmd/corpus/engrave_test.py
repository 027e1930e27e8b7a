import numpy as np
import pytest
from music21 import corpus, stream

from tfds_msmd.corpus import engrave, sources

pytestmark = pytest.mark.single_backend


@pytest.fixture(scope="module")
def chorale():
    """Six measures of BWV 269 (with a tie in the bass of measure 5 carried into 6)."""
    return sources.grand_staff(corpus.parse("bach/bwv269"), max_measures=6)


@pytest.fixture(scope="module")
def engraving(chorale):
    return engrave.engrave(chorale)


def test_pages_are_835_px_grayscale_on_white(engraving):
    assert len(engraving.pages) == 1
    page = engraving.pages[0]
    assert page.dtype == np.uint8 and page.shape == (1181, 835)
    assert np.median(page) == 255 and page.min() < 50  # white paper, black ink


def test_one_notehead_per_sounding_note_and_no_tie_continuations(chorale, engraving):
    sounding = [n for p in chorale.parts for m in p.getElementsByClass(stream.Measure) for n in m.recurse().notes
                for _ in n.pitches if n.tie is None or n.tie.type == "start"]
    assert len(engraving.noteheads) == len(sounding)
    starts = sorted((float(n.getOffsetInHierarchy(p)) * 0.5, n.pitch.midi) for p in chorale.parts
                    for n in p.recurse().notes if n.tie is None or n.tie.type == "start")
    assert sorted((h.onset, h.pitch) for h in engraving.noteheads) == starts  # 120 bpm: 0.5 s per quarter


def test_noteheads_lie_inside_their_system_and_are_inked(engraving):
    systems = engraving.systems[0]
    page = engraving.pages[0]
    for h in engraving.noteheads:
        (top, left), _, (bottom, right), _ = systems[h.system]
        y, x = h.centre
        assert top <= y <= bottom and left <= x <= right
        assert page[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3].min() < 128
    # Staff space of about 7 px as in MSMD: a notehead is one staff space high.
    assert all(6 < h.height < 9 for h in engraving.noteheads)


def test_onsets_are_monotone_in_reading_order(engraving):
    order = sorted(engraving.noteheads, key=lambda h: (h.page, h.system, h.left))
    onsets = np.array([h.onset for h in order])
    # Within one onset, noteheads of a chord second may sit one notehead width to the right of a later one.
    columns = [(h.page, h.system, round(h.left / 10)) for h in order]
    assert np.all(np.diff(onsets)[np.array([a != b for a, b in zip(columns[:-1], columns[1:])])] >= 0)


def test_broken_musicxml_raises():
    with pytest.raises(ValueError):
        engrave.engrave_musicxml("<score-partwise><part-list/></score-partwise>")
