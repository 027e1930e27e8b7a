import numpy as np
import pytest
from music21 import corpus

from tfds_msmd.corpus import setups, sources

pytestmark = pytest.mark.single_backend


@pytest.fixture(scope="module")
def prelude():
    return sources.grand_staff(corpus.parse("bach/bwv846.mxl"), max_measures=2)


@pytest.mark.parametrize("name", [n for n, s in setups.SETUPS.items() if s.engraver == "verovio"])
def test_every_verovio_setup_boxes_the_same_notes_on_ink(prelude, name):
    reference = setups.engrave(prelude, "verovio")
    engraving = setups.engrave(prelude, name)
    key = lambda e: sorted((round(h.onset, 4), h.pitch, h.staff) for h in e.noteheads)  # noqa: E731
    assert key(engraving) == key(reference)
    page = engraving.pages[0]
    for h in engraving.noteheads:
        y, x = (int(round(v)) for v in h.centre)
        assert page[y - 1:y + 2, x - 1:x + 2].min() < 128
    # Fonts and staff sizes differ: the notehead height is the font's, about one staff space.
    assert 6 < np.median([h.height for h in engraving.noteheads]) < 12


def test_setups_differ_on_the_page(prelude):
    pages = {name: setups.engrave(prelude, name).pages[0] for name in ("verovio", "verovio-bravura")}
    assert np.mean(pages["verovio"] != pages["verovio-bravura"]) > 0.005


def test_unknown_setup_is_rejected(prelude):
    with pytest.raises(ValueError, match="verovio-bravura"):
        setups.engrave(prelude, "no-such-setup")
