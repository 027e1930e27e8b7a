"""Tests for unrolling staff systems into the strip, the way back to the pages, and snippets, on a real score
engraved with verovio (the mazurka of `pages_test.py`)."""

import numpy as np
import pytest

from keras_asr import sheet
from keras_asr import windows
from keras_asr.pages_test import mazurka  # noqa: F401 (a module fixture shared with pages_test.py)

pytestmark = pytest.mark.single_backend


def test_unrolled_strip_is_the_systems_side_by_side(mazurka):
    _, pages, score = mazurka
    assert score.strip.shape[0] == sheet.STRIP_HEIGHT and score.strip.dtype == np.float32
    assert score.width == sum(system.right - system.left + 1 for system in score.systems)
    assert list(score.system_pages) == [0] * 6 + [1] * 6
    for k, system in enumerate(score.systems):
        page = pages[score.system_pages[k]]
        top = int(round(system.centre)) - sheet.STRIP_HEIGHT // 2
        start = score.system_starts[k]
        np.testing.assert_array_equal(
            score.strip[:, start:start + system.right - system.left + 1],
            page[top:top + sheet.STRIP_HEIGHT, system.left:system.right + 1],
        )


def test_strip_to_page_round_trip(mazurka):
    _, pages, score = mazurka
    x = np.arange(score.width)
    page, number, page_x = score.strip_to_page(x)
    np.testing.assert_array_equal(score.page_to_strip(page, number, page_x), x)
    # The mapped page column holds the same pixels as the strip column.
    for column in [0, 1000, score.width // 2, score.width - 1]:
        k = np.flatnonzero((score.system_pages == page[column]) & (score.system_numbers == number[column]))[0]
        top = int(round(score.systems[k].centre)) - sheet.STRIP_HEIGHT // 2
        np.testing.assert_array_equal(
            score.strip[:, column], pages[page[column]][top:top + sheet.STRIP_HEIGHT, page_x[column]]
        )
    with pytest.raises(ValueError, match="No system"):
        score.page_to_strip(0, 6, 100)


def test_snippets(mazurka):
    _, _, score = mazurka
    centres = sheet.snippet_centres(score.width, hop=sheet.SNIPPET_HOP)
    np.testing.assert_array_equal(np.diff(centres), sheet.SNIPPET_HOP)
    snippets = windows.snippets(score.strip, centres)
    assert snippets.shape == (len(centres), 80, 100) and snippets.dtype == np.float32
    assert 0.0 <= snippets.min() and snippets.max() <= 1.0
    # Interior snippet: the 2x2 block mean of the 160 x 200 window centred on the strip.
    x = centres[40]
    window = score.strip[20:180, x - 100:x + 100]
    np.testing.assert_allclose(snippets[40], window.reshape(80, 2, 100, 2).mean(axis=(1, 3)), atol=1e-6)
    # Windows past either end of the strip are padded white, and centred (not shifted back inside).
    ends = windows.snippets(score.strip, [0, score.width, score.width + 150])
    assert np.all(ends[0][:, :50] == 1.0) and np.any(ends[0][:, 50:] < 1.0)
    np.testing.assert_allclose(ends[0][:, 50:], windows.snippets(score.strip, [100])[0][:, :50])
    assert np.all(ends[1][:, 50:] == 1.0) and np.any(ends[1][:, :50] < 1.0)
    assert np.all(ends[2] == 1.0)


def test_unrolling_skips_pages_without_systems(mazurka):
    _, pages, _ = mazurka
    blank = np.ones_like(pages[0])
    with pytest.raises(sheet.NoStaffSystemsError):
        sheet.unroll([blank, blank])
    # A title page before the music is skipped; the map keeps the page numbers.
    score = sheet.unroll([blank, pages[1]])
    assert set(score.system_pages) == {1}


def test_crop_white_pads_white_past_every_edge_in_the_image_dtype():
    # One cut for the application's float pages and the corpus reader's uint8 ones (tfds_msmd.layout).
    image = np.random.default_rng(0).integers(0, 256, (50, 80)).astype(np.uint8)
    padded = np.pad(image, 100, constant_values=255)
    for top, bottom, left, right in [(-10, 20, -5, 30), (40, 70, 60, 100), (-30, -5, 10, 20), (10, 20, -40, -10)]:
        expected = padded[top + 100:bottom + 100, left + 100:right + 100]
        cut = sheet.crop_white(image, top, bottom, left, right)
        assert cut.dtype == np.uint8
        np.testing.assert_array_equal(cut, expected)
        cut = sheet.crop_white(image / 255.0, top, bottom, left, right)
        assert cut.dtype == np.float32
        np.testing.assert_array_equal(cut, (expected / 255.0).astype(np.float32))
