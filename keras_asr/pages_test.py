"""Tests for reading sheet music files as pages (images, PDFs, engraving with verovio), on real scores.

The engraved chorale and mazurka and the comparison with verovio's own system boxes are shared with
`staves_test.py` and `sheet_test.py`.
"""

import re
import xml.etree.ElementTree as ET

import music21
import numpy as np
import pytest
import verovio
from PIL import Image

from keras_asr import pages as pages_lib
from keras_asr import sheet
from keras_asr import staves

pytestmark = pytest.mark.single_backend

SVG = "{http://www.w3.org/2000/svg}"
MAZURKA = music21.common.getCorpusFilePath() / "chopin" / "mazurka06-2.krn"  # piano, Humdrum, 2 pages


def verovio_systems(svg, page_width=pages_lib.PAGE_WIDTH):
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
    svgs = pages_lib.engrave_svg(path)
    return path, svgs, [pages_lib.rasterize_svg(svg) for svg in svgs]


@pytest.fixture(scope="module")
def mazurka():
    """Chopin's Mazurka op. 6 no. 2 from Humdrum (grand staff): SVGs, pages, unrolled score."""
    svgs = pages_lib.engrave_svg(MAZURKA)
    pages = [pages_lib.rasterize_svg(svg) for svg in svgs]
    return svgs, pages, sheet.unroll(pages)


def assert_matches_verovio(systems, svg):
    reference = verovio_systems(svg)
    assert len(systems) == len(reference)
    for system, box in zip(systems, reference):
        assert box_iou(system, box) > 0.95, (system, box)


def test_load_pages_reads_musicxml_and_mei_alike(chorale, tmp_path):
    path, _, pages = chorale
    toolkit = verovio.toolkit()
    toolkit.loadFile(str(path))
    mei = tmp_path / "bwv66.6.mei"
    mei.write_text(toolkit.getMEI())
    from_mei = pages_lib.load_pages(mei)
    assert [page.shape for page in from_mei] == [page.shape for page in pages]
    assert staves.detect_systems(from_mei[0]) == staves.detect_systems(pages[0])


def test_pdf_and_png_input(mazurka, tmp_path):
    svgs, pages, _ = mazurka
    image = Image.fromarray(np.round(pages[0] * 255).astype(np.uint8))
    image.save(tmp_path / "page.pdf", resolution=100)
    # Black ink on a transparent background, as engravers often write PNGs.
    ink = Image.fromarray(np.round((1 - pages[0]) * 255).astype(np.uint8))
    transparent = Image.merge("RGBA", [Image.new("L", image.size, 0)] * 3 + [ink])
    transparent.save(tmp_path / "page.png")
    for name in ["page.pdf", "page.png"]:
        loaded = pages_lib.load_pages(tmp_path / name)
        assert len(loaded) == 1 and loaded[0].shape[1] == pages_lib.PAGE_WIDTH and loaded[0].dtype == np.float32
        assert 0.0 <= loaded[0].min() and loaded[0].max() == pytest.approx(1.0)
        assert_matches_verovio(staves.detect_systems(loaded[0]), svgs[0])


def test_unknown_file_type_raises(tmp_path):
    with pytest.raises(ValueError, match="Don't know how to read"):
        pages_lib.load_pages(tmp_path / "notes.txt")


def test_engraving_runs_apart_and_is_stopped_when_it_hangs(chorale, tmp_path):
    path = chorale[0]
    # The worker process is killed at the timeout (here far below the second it needs): the caller survives.
    with pytest.raises(pages_lib.EngravingError, match="took more than 0.01 s"):
        pages_lib.engrave_svg(path, timeout=0.01)
    crash = tmp_path / "x1.abc"
    crash.write_text("X:1\n")  # verovio segfaults on this
    with pytest.raises(pages_lib.EngravingError, match="verovio crashed \\(SIGSEGV\\)"):
        pages_lib.load_pages(crash)
    with pytest.raises(FileNotFoundError, match="No score file at"):
        pages_lib.load_pages(tmp_path / "missing.musicxml")
    truncated = tmp_path / "truncated.musicxml"
    truncated.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(ValueError, match="is not well-formed XML"):
        pages_lib.load_pages(truncated)


def test_a_score_whose_pitches_are_not_pitches_is_refused(chorale, tmp_path):
    path = chorale[0]
    text = path.read_text()
    assert text.count("<step>") > 50
    pages_lib._check_well_formed(path)  # the real score passes
    for good, bad, shown in ((r"<step>[A-G]</step>", "<step>H</step>", "step 'H'"),
                             (r"<octave>\d</octave>", "<octave>12</octave>", "octave '12'")):
        damaged = tmp_path / "damaged.musicxml"
        damaged.write_text(re.sub(good, bad, text, count=1))
        with pytest.raises(ValueError, match=f"1 note\\(s\\) whose pitch is not a pitch \\(the first: .*{shown}"):
            pages_lib.load_pages(damaged)
