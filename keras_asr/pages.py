"""Sheet music files -> pages: images, PDFs and symbolic scores read as grayscale pages of one width.

The first step of the sheet side, for any score a user brings: images (PNG, JPEG, ...), PDFs (rasterized with
pdfium) and symbolic scores (MusicXML, MEI, Humdrum, ABC; engraved on the fly with verovio, in a separate process
so that a score that crashes or hangs verovio costs only that file). Pages are scaled to MSMD's width of 835 px,
where verovio's default engraving has the same staff space as MSMD's LilyPond pages (about 7 px); `staves` finds
their staff systems and `sheet` unrolls them.

Images are float32 arrays in [0, 1] with white = 1 throughout.

Example:

```python
pages = keras_asr.pages.load_pages("score.pdf")                        # [(rows, 835) float32, ...]
pages, measures = keras_asr.pages.load_score("bwv66.6.musicxml")      # with each system's measures
```
"""

import io
import json
import pathlib
import signal
import subprocess
import sys

import numpy as np
import skimage.transform

from keras_asr.geometry import PAGE_WIDTH

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
SCORE_SUFFIXES = {".xml", ".musicxml", ".mxl", ".mei", ".krn", ".hmd", ".abc"}
XML_SUFFIXES = {".xml", ".musicxml", ".mei"}


class EngravingError(ValueError):
    """Raised when verovio crashes, hangs or fails on a score file."""


def load_pages(path, page_width=PAGE_WIDTH):
    """Loads the pages of an image, a PDF or a symbolic score, scaled to `page_width` (see `load_score`)."""
    return load_score(path, page_width)[0]


def load_score(path, page_width=PAGE_WIDTH):
    """Loads the pages of an image, a PDF or a symbolic score, scaled to `page_width`, with its measures.

    Args:
        path: an image file (one page), a PDF, or a score verovio reads (MusicXML, MEI, Humdrum, ABC).
        page_width: width of the returned pages in pixels.

    Returns:
        (pages, measures): a list of float32 arrays (rows, page_width) in [0, 1], white = 1; and for a score
        file per page the `measures.spans_from_svg` of its engraving, None for an image or a PDF.

    Example:

    >>> pages, measures = load_score("bwv66.6.musicxml")
    >>> pages[0].shape, [number for _, _, number in measures[0][0]]  # page 1, system 1
    ((1181, 835), ['0', '1', '2', '3', '4'])
    """
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES | SCORE_SUFFIXES | {".pdf"} and not path.is_file():
        raise FileNotFoundError(f"No score file at {path}" + (" (a folder)." if path.is_dir() else "."))
    if suffix in IMAGE_SUFFIXES:
        return [to_page_width(load_image(path), page_width)], None
    if suffix == ".pdf":
        return load_pdf(path, page_width), None
    if suffix in SCORE_SUFFIXES:
        from keras_asr import measures

        if suffix in XML_SUFFIXES:
            _check_well_formed(path)
        svgs = engrave_svg(path)
        return ([rasterize_svg(svg, page_width) for svg in svgs],
                [measures.spans_from_svg(svg, page_width) for svg in svgs])
    raise ValueError(
        f"Don't know how to read sheet music from '{path.name}': expected an image "
        f"({', '.join(sorted(IMAGE_SUFFIXES))}), a PDF, or a score ({', '.join(sorted(SCORE_SUFFIXES))})."
    )


_STEPS = set("ABCDEFG")


def _check_well_formed(path):
    """Raises ValueError for an XML score that is not well-formed, or whose pitches are not pitches.

    verovio engraves what it can read of a truncated file as if it were the whole piece, and draws a note of
    step "H" or octave 12 somewhere or nowhere; either way the index would hold a score that is not the file's.
    """
    import xml.etree.ElementTree as ET

    def bad_pitch(element):
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "pitch":  # MusicXML: <step> A-G, <octave> 0-9, <alter> a number of semitones
            step, octave = element.findtext("step", ""), element.findtext("octave", "")
            alter = element.findtext("alter", "0")
            try:
                if step.strip() in _STEPS and 0 <= int(octave) <= 9 and abs(float(alter)) <= 2:
                    return None
            except ValueError:
                pass
            return f"step {step.strip()!r}, octave {octave.strip()!r}, alter {alter.strip()!r}"
        if tag == "note" and "pname" in element.attrib:  # MEI: pname a-g, oct 0-9
            pname, octave = element.get("pname", ""), element.get("oct", "4")
            if pname.upper() in _STEPS and octave.isdigit() and int(octave) <= 9:
                return None
            return f"pname {pname!r}, oct {octave!r}"
        return None

    bad, first = 0, None
    try:
        for _, element in ET.iterparse(path):
            problem = bad_pitch(element)
            if problem:
                bad, first = bad + 1, first or problem
    except ET.ParseError as e:
        raise ValueError(f"'{path}' is not well-formed XML ({e}): a truncated or damaged score?") from None
    if bad:
        raise ValueError(f"'{path}' has {bad} note(s) whose pitch is not a pitch (the first: {first}): a damaged "
                         "or hand-edited score?")


def load_image(path):
    """Reads an image file as a float32 grayscale page in [0, 1], transparent pixels white."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGBA")
        # Engravers often write black on transparent: flatten onto white before dropping alpha.
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        gray = Image.alpha_composite(background, image).convert("L")
    return np.asarray(gray, dtype=np.float32) / 255.0


def load_pdf(path, page_width=PAGE_WIDTH):
    """Rasterizes every page of a PDF to a float32 grayscale page `page_width` pixels wide."""
    import pypdfium2

    pdf = pypdfium2.PdfDocument(str(path))
    try:
        pages = []
        for page in pdf:
            bitmap = page.render(scale=page_width / page.get_width(), grayscale=True)
            image = np.asarray(bitmap.to_numpy(), dtype=np.float32).squeeze() / 255.0
            pages.append(to_page_width(image, page_width))
        return pages
    finally:
        pdf.close()


# verovio's layout for A4 pages: at 835 px its staff space is MSMD's (~7 px). The offline corpus
# (tfds_msmd.corpus.engrave) engraves with these too, so a score engraved at query time looks like training data.
VEROVIO_OPTIONS = {
    "pageWidth": 2100,
    "pageHeight": 2970,
    "pageMarginLeft": 100,
    "pageMarginRight": 100,
    "pageMarginTop": 100,
    "pageMarginBottom": 100,
    "font": "Leipzig",
    "header": "none",
    "footer": "none",
    "breaks": "auto",
    "adjustPageHeight": False,
    "svgAdditionalAttribute": ["measure@n"],  # measure numbers in the SVG, for `keras_asr.measures`
}


# Seconds one score may take to engrave; the longest quartet movement of the offline corpus takes well under one.
ENGRAVE_TIMEOUT = 120
_UNREADABLE = 3  # exit status of the worker when verovio rejects the file
# The engraving worker: verovio segfaults on some inputs (an ABC file holding only "X:1"), and a crash in the
# main process would end a whole batch without a word. A fresh interpreter (not multiprocessing) also works
# where the main script cannot be re-imported, e.g. when it was read from standard input.
_ENGRAVE_WORKER = f"""
import json, sys
import verovio
verovio.enableLog(verovio.LOG_ERROR)
toolkit = verovio.toolkit()
toolkit.setOptions(json.loads(sys.argv[2]))
if not toolkit.loadFile(sys.argv[1]):
    sys.exit({_UNREADABLE})
json.dump([toolkit.renderToSVG(page) for page in range(1, toolkit.getPageCount() + 1)], sys.stdout)
"""


def engrave_svg(path, timeout=ENGRAVE_TIMEOUT):
    """Engraves a score with verovio (`VEROVIO_OPTIONS`) in a separate process; one SVG string per page.

    Raises:
        ValueError: verovio cannot read the file.
        EngravingError: verovio crashed, failed or ran longer than `timeout` seconds (then it is killed).

    Example:

    >>> len(engrave_svg("bwv66.6.musicxml"))
    1
    """
    command = [sys.executable, "-c", _ENGRAVE_WORKER, str(path), json.dumps(VEROVIO_OPTIONS)]
    try:
        process = subprocess.run(command, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EngravingError(f"verovio took more than {timeout} s to engrave '{path}' and was stopped.") from None
    if process.returncode == _UNREADABLE:
        raise ValueError(f"verovio could not read the score '{path}'.")
    if process.returncode < 0:
        raise EngravingError(f"verovio crashed ({signal.Signals(-process.returncode).name}) engraving '{path}'.")
    if process.returncode:
        last = (process.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        raise EngravingError(f"verovio failed on '{path}': {last}")
    pages = json.loads(process.stdout)
    if not pages:
        raise ValueError(f"verovio engraved no page from '{path}'.")
    return pages


def rasterize_svg(svg, page_width=PAGE_WIDTH):
    """Renders an SVG string to a float32 grayscale page `page_width` pixels wide."""
    import cairosvg
    from PIL import Image

    png = cairosvg.svg2png(bytestring=svg.encode(), output_width=page_width, background_color="white")
    with Image.open(io.BytesIO(png)) as image:
        return to_page_width(np.asarray(image.convert("L"), dtype=np.float32) / 255.0, page_width)


def engrave(path, page_width=PAGE_WIDTH):
    """Engraves a score file (MusicXML, MEI, Humdrum, ABC) to pages `page_width` pixels wide."""
    return [rasterize_svg(svg, page_width) for svg in engrave_svg(path)]


def to_page_width(image, page_width=PAGE_WIDTH):
    """Scales a grayscale page to `page_width` columns, keeping its aspect ratio."""
    image = np.asarray(image, dtype=np.float32)
    if image.shape[1] == page_width:
        return image
    rows = max(1, round(image.shape[0] * page_width / image.shape[1]))
    scaled = skimage.transform.resize(
        image, (rows, page_width), order=1, anti_aliasing=image.shape[1] > page_width, preserve_range=True
    )
    return scaled.astype(np.float32)
