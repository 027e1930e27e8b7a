"""Tests for staff-system detection, unrolling and snippets, on real scores engraved with verovio."""

import re
import xml.etree.ElementTree as ET

import music21
import numpy as np
import pytest
import verovio
from PIL import Image

from keras_asr import sheet
from keras_asr import windows

pytestmark = pytest.mark.single_backend

SVG = "{http://www.w3.org/2000/svg}"
MAZURKA = music21.common.getCorpusFilePath() / "chopin" / "mazurka06-2.krn"  # piano, Humdrum, 2 pages


def verovio_systems(svg, page_width=sheet.PAGE_WIDTH):
    """verovio's own system boxes (top, bottom, left, right) in page pixels, from its staff-line paths."""
    root = ET.fromstring(svg)
    scale = page_width / float(root.find(f"{SVG}svg").get("viewBox").split()[2])
    margin = root.find(f".//{SVG}g[@class='page-margin']")
    dx, dy = map(float, re.findall(r"[-\d.]+", margin.get("transform")))
    boxes = []
    for system in margin.iterfind(f".//{SVG}g[@class='system']"):
        xs, ys = [], []
        for line in system.iterfind(f".//{SVG}g[@class='staff']/{SVG}path"):
            x0, y0, x1, y1 = map(float, re.findall(r"[-\d.]+", line.get("d")))
            xs += [x0, x1]
            ys.append(y0)
        boxes.append(((min(ys) + dy) * scale, (max(ys) + dy) * scale, (min(xs) + dx) * scale, (max(xs) + dx) * scale))
    return boxes


def box_iou(system, box):
    top, bottom, left, right = box
    rows = max(0.0, min(system.bottom, bottom) - max(system.top, top))
    cols = max(0.0, min(system.right, right) - max(system.left, left))
    area = (system.bottom - system.top) * (system.right - system.left) + (bottom - top) * (right - left)
    return rows * cols / (area - rows * cols)


@pytest.fixture(scope="module")
def chorale(tmp_path_factory):
    """Bach's chorale BWV 66.6 (four staves a system), first 6 measures, as MusicXML: path, SVGs, pages."""
    path = tmp_path_factory.mktemp("chorale") / "bwv66.6.musicxml"
    music21.corpus.parse("bach/bwv66.6").measures(0, 6).write("musicxml", fp=path)
    svgs = sheet.engrave_svg(path)
    return path, svgs, [sheet.rasterize_svg(svg) for svg in svgs]


@pytest.fixture(scope="module")
def mazurka():
    """Chopin's Mazurka op. 6 no. 2 from Humdrum (grand staff): SVGs, pages, unrolled score."""
    svgs = sheet.engrave_svg(MAZURKA)
    pages = [sheet.rasterize_svg(svg) for svg in svgs]
    return svgs, pages, sheet.unroll(pages)


def assert_matches_verovio(systems, svg):
    reference = verovio_systems(svg)
    assert len(systems) == len(reference)
    for system, box in zip(systems, reference):
        assert box_iou(system, box) > 0.95, (system, box)


def test_chorale_systems_match_verovio(chorale):
    _, svgs, pages = chorale
    for svg, page in zip(svgs, pages):
        systems = sheet.detect_systems(page)
        assert_matches_verovio(systems, svg)
        assert all(system.num_staves == 4 for system in systems)


def test_grand_staff_systems_match_verovio(mazurka):
    svgs, pages, _ = mazurka
    assert len(pages) == 2
    for svg, page in zip(svgs, pages):
        systems = sheet.detect_systems(page)
        assert_matches_verovio(systems, svg)
        assert all(system.num_staves == 2 for system in systems)
        # verovio's default engraving at 835 px has MSMD's (LilyPond's) staff space of about 7 px.
        assert all(6.5 < system.staff_space < 7.5 for system in systems)


def test_load_pages_reads_musicxml_and_mei_alike(chorale, tmp_path):
    path, _, pages = chorale
    toolkit = verovio.toolkit()
    toolkit.loadFile(str(path))
    mei = tmp_path / "bwv66.6.mei"
    mei.write_text(toolkit.getMEI())
    from_mei = sheet.load_pages(mei)
    assert [page.shape for page in from_mei] == [page.shape for page in pages]
    assert sheet.detect_systems(from_mei[0]) == sheet.detect_systems(pages[0])


def test_pdf_and_png_input(mazurka, tmp_path):
    svgs, pages, _ = mazurka
    image = Image.fromarray(np.round(pages[0] * 255).astype(np.uint8))
    image.save(tmp_path / "page.pdf", resolution=100)
    # Black ink on a transparent background, as engravers often write PNGs.
    ink = Image.fromarray(np.round((1 - pages[0]) * 255).astype(np.uint8))
    transparent = Image.merge("RGBA", [Image.new("L", image.size, 0)] * 3 + [ink])
    transparent.save(tmp_path / "page.png")
    for name in ["page.pdf", "page.png"]:
        loaded = sheet.load_pages(tmp_path / name)
        assert len(loaded) == 1 and loaded[0].shape[1] == sheet.PAGE_WIDTH and loaded[0].dtype == np.float32
        assert 0.0 <= loaded[0].min() and loaded[0].max() == pytest.approx(1.0)
        assert_matches_verovio(sheet.detect_systems(loaded[0]), svgs[0])


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
    np.testing.assert_array_equal(np.diff(centres), 50)
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


def test_blank_page_raises(mazurka):
    _, pages, _ = mazurka
    blank = np.ones_like(pages[0])
    with pytest.raises(sheet.NoStaffSystemsError, match="No staff system"):
        sheet.detect_systems(blank)
    with pytest.raises(sheet.NoStaffSystemsError):
        sheet.unroll([blank, blank])
    # A title page before the music is skipped; the map keeps the page numbers.
    score = sheet.unroll([blank, pages[1]])
    assert set(score.system_pages) == {1}


def test_unknown_file_type_raises(tmp_path):
    with pytest.raises(ValueError, match="Don't know how to read"):
        sheet.load_pages(tmp_path / "notes.txt")


def test_engraving_runs_apart_and_is_stopped_when_it_hangs(chorale, tmp_path):
    path = chorale[0]
    # The worker process is killed at the timeout (here far below the second it needs): the caller survives.
    with pytest.raises(sheet.EngravingError, match="took more than 0.01 s"):
        sheet.engrave_svg(path, timeout=0.01)
    crash = tmp_path / "x1.abc"
    crash.write_text("X:1\n")  # verovio segfaults on this
    with pytest.raises(sheet.EngravingError, match="verovio crashed \\(SIGSEGV\\)"):
        sheet.load_pages(crash)
    with pytest.raises(FileNotFoundError, match="No score file at"):
        sheet.load_pages(tmp_path / "missing.musicxml")
    truncated = tmp_path / "truncated.musicxml"
    truncated.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ValueError, match="is not well-formed XML"):
        sheet.load_pages(truncated)


def test_a_score_whose_pitches_are_not_pitches_is_refused(chorale, tmp_path):
    path = chorale[0]
    text = path.read_text()
    assert text.count("<step>") > 50
    sheet._check_well_formed(path)  # the real score passes
    for good, bad, shown in ((r"<step>[A-G]</step>", "<step>H</step>", "step 'H'"),
                             (r"<octave>\d</octave>", "<octave>12</octave>", "octave '12'")):
        damaged = tmp_path / "damaged.musicxml"
        damaged.write_text(re.sub(good, bad, text, count=1))
        with pytest.raises(ValueError, match=f"1 note\\(s\\) whose pitch is not a pitch \\(the first: .*{shown}"):
            sheet.load_pages(damaged)
