"""Tests for staff-system detection on real scores engraved with verovio: the systems found are verovio's own.

Deskewing and turning upside-down pages are tested on skewed and turned pages in `tests/test_faults.py`.
"""

import numpy as np
import pytest

from keras_asr import staves
from keras_asr.pages_test import assert_matches_verovio
from keras_asr.pages_test import chorale  # noqa: F401 (module fixtures shared with pages_test.py)
from keras_asr.pages_test import mazurka  # noqa: F401

pytestmark = pytest.mark.single_backend


def test_chorale_systems_match_verovio(chorale):
    _, svgs, pages = chorale
    for svg, page in zip(svgs, pages):
        systems = staves.detect_systems(page)
        assert_matches_verovio(systems, svg)
        assert all(system.num_staves == 4 for system in systems)


def test_grand_staff_systems_match_verovio(mazurka):
    svgs, pages, _ = mazurka
    assert len(pages) == 2
    for svg, page in zip(svgs, pages):
        systems = staves.detect_systems(page)
        assert_matches_verovio(systems, svg)
        assert all(system.num_staves == 2 for system in systems)
        # verovio's default engraving at 835 px has MSMD's (LilyPond's) staff space of about 7 px.
        assert all(6.5 < system.staff_space < 7.5 for system in systems)


def test_blank_page_raises(mazurka):
    _, pages, _ = mazurka
    with pytest.raises(staves.NoStaffSystemsError, match="No staff system"):
        staves.detect_systems(np.ones_like(pages[0]))
