"""Sheet music pages -> staff systems -> unrolled strip -> snippets.

The sheet side of the data flow, for any score a user brings: images (PNG, JPEG, ...), PDFs (rasterized with
pdfium) and symbolic scores (MusicXML, MEI, Humdrum, ABC; engraved on the fly with verovio, in a separate process
so that a score that crashes or hangs verovio costs only that file). Pages are scaled to MSMD's width of 835 px,
where verovio's default engraving has the same staff space as MSMD's LilyPond pages (about 7 px). Pages are
deskewed (up to `MAX_SKEW` degrees), staff systems are found with plain image processing, every system becomes
a 200-row strip centred on it, the strips are concatenated left to right (the "unrolled score"), and fixed-size
snippets are cut from the strip for the sheet encoder.

Images are float32 arrays in [0, 1] with white = 1 throughout.

Example:

```python
pages = keras_asr.sheet.load_pages("score.pdf")
score = keras_asr.sheet.unroll(pages)
centres = keras_asr.sheet.snippet_centres(score.width, hop=50)
snippets = keras_asr.windows.snippets(score.strip, centres)  # (n, 80, 100)
page, system, page_x = score.strip_to_page(centres)
```
"""

import dataclasses
import io
import json
import pathlib
import signal
import subprocess
import sys

import numpy as np
import skimage.transform

from keras_asr.geometry import PAGE_WIDTH
from keras_asr.geometry import SNIPPET_HOP
from keras_asr.geometry import SNIPPET_WINDOW
from keras_asr.geometry import STRIP_HEIGHT

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp"}
SCORE_SUFFIXES = {".xml", ".musicxml", ".mxl", ".mei", ".krn", ".hmd", ".abc"}
XML_SUFFIXES = {".xml", ".musicxml", ".mei"}


class NoStaffSystemsError(ValueError):
    """Raised when a page (or every page of a document) holds no staff system."""


class EngravingError(ValueError):
    """Raised when verovio crashes, hangs or fails on a score file."""


@dataclasses.dataclass(frozen=True)
class StaffSystem:
    """A staff system's box on its page, in pixels of the page it was detected on.

    `top` and `bottom` are the rows of the first staff's top line and the last staff's bottom line, `left` and
    `right` the first and last columns of the staff lines (both inclusive).
    """

    top: int
    bottom: int
    left: int
    right: int
    num_staves: int
    staff_space: float

    @property
    def centre(self):
        return (self.top + self.bottom) / 2


# ---------------------------------------------------------------------------------------------------------------
# Loading pages


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


# ---------------------------------------------------------------------------------------------------------------
# Staff-system detection


def detect_systems(page):
    """Finds the staff systems on a page.

    Staff lines are the rows holding long horizontal runs of dark pixels; runs of 5 equally spaced lines of
    similar extent are staves; consecutive staves belong to one system when a vertical line (the system's start
    bar, a brace-side bar or a barline drawn through the staves) bridges the gap between them.

    Args:
        page: float32 grayscale page in [0, 1], white = 1.

    Returns:
        A list of `StaffSystem`, top to bottom.

    Raises:
        NoStaffSystemsError: the page holds no staff.

    Example:

    >>> systems = detect_systems(load_pages("bwv66.6.musicxml")[0])
    >>> [(s.num_staves, s.top, s.bottom) for s in systems]
    [(4, 61, 304), (4, 361, 605)]
    """
    dark = binarize(page)
    staves = _find_staves(dark)
    if not staves:
        raise NoStaffSystemsError(
            "No staff system found on the page (a blank page, or not sheet music?): no five equally spaced long "
            "horizontal lines."
        )
    systems, group = [], [staves[0]]
    for upper, lower in zip(staves, staves[1:]):
        if _bridged(dark, upper, lower):
            group.append(lower)
        else:
            systems.append(_system_of(group))
            group = [lower]
    systems.append(_system_of(group))
    return systems


# Pages are deskewed by up to this many degrees (a scan or a photograph rarely sits straighter).
MAX_SKEW = 2.5
_SKEW_RUN = 15


def estimate_skew(page, max_angle=MAX_SKEW):
    """The angle in degrees (counter-clockwise) by which a page's staff lines are tilted, 0 for a straight page.

    Only the darkness of horizontal runs at least `_SKEW_RUN` px long takes part (a grey opening: staff lines,
    which a tilt of 2.5 degrees still leaves ~23 px per row, not noteheads, stems or text). It is projected onto
    the vertical along candidate directions, each pixel shared between its two nearest rows; along the lines'
    direction the projection is the most concentrated (its sum of squares peaks). A coarse search in 0.1-degree
    steps is refined to 0.01 degrees, and of nearly equal peaks the angle closest to 0 wins, so that a straight
    page stays exactly as it is.
    """
    import scipy.ndimage

    darkness = scipy.ndimage.grey_opening(1.0 - np.asarray(page, np.float32), size=(1, _SKEW_RUN))
    rows, cols = np.nonzero(darkness > 0.1)
    if rows.size == 0:
        return 0.0
    weights = darkness[rows, cols].astype(np.float64)
    cols = cols - page.shape[1] / 2

    def concentration(angle, step):
        projected = rows[::step] + np.tan(np.radians(angle)) * cols[::step]
        lower = np.floor(projected).astype(np.int64)
        lower, upper_share = lower - lower.min(), projected - np.floor(projected)
        profile = np.bincount(lower, weights[::step] * (1 - upper_share), minlength=lower.max() + 2)
        profile += np.bincount(lower + 1, weights[::step] * upper_share, minlength=lower.max() + 2)
        return np.sum(profile ** 2)

    def best(angles, step=1):
        scores = np.array([concentration(angle, step) for angle in angles])
        near = np.flatnonzero(scores >= scores.max() * (1 - 1e-4))
        return float(angles[near[np.argmin(np.abs(angles[near]))]])

    # The coarse search sees every 4th pixel (still thousands a staff line): a third of the time.
    coarse = best(np.round(np.arange(-max_angle, max_angle + 1e-9, 0.1), 2), step=4)
    return best(np.round(np.arange(coarse - 0.1, coarse + 0.1 + 1e-9, 0.01), 3))


def deskew(page, max_angle=MAX_SKEW):
    """The page rotated so that its staff lines are horizontal; a straight page is returned as it is."""
    angle = estimate_skew(page, max_angle)
    if abs(angle) < 0.05:  # under a third of a pixel across an 835-px staff: nothing to correct
        return page
    # Rotating by the tilt turns the lines back; the corners that come in are paper.
    return skimage.transform.rotate(page, -angle, order=1, mode="constant", cval=1.0,
                                    preserve_range=True).astype(np.float32)


# A page is turned when its systems' right ends hold clearly more ink than their left ends (log ratio).
UPSIDE_DOWN_BELOW = -0.2


def orientation(page):
    """How upright a page is: the log ratio of ink at its systems' left ends to ink at their right ends.

    Every system starts with a clef, a key and a time signature, and a grand staff with a brace just left of the
    staff lines; it ends with notes and a barline. Over 47 LilyPond and verovio pages of the varied corpus the
    ratio was 0.31-1.82 upright, and exactly its negative turned by 180 degrees. Staff-line rows, equal at
    both ends, are left out. A page of one system a few bars long can fall between (0.05 on a two-bar test
    page): it is then left as it is.

    Returns:
        A float: above 0 upright, below `UPSIDE_DOWN_BELOW` upside down; 0.0 for a page without staff systems.
    """
    try:
        systems = detect_systems(page)
    except NoStaffSystemsError:
        return 0.0
    dark = binarize(page)
    left = right = 0.0
    for system in systems:
        space = system.staff_space
        width, margin, extra = int(round(6 * space)), int(round(2 * space)), 2 * int(space)
        band = dark[max(0, system.top - extra):system.bottom + extra].astype(np.float32)
        notes = band[:, system.left:system.right].mean(axis=1) <= 0.5  # not a staff-line row
        left += band[notes, max(0, system.left - margin):system.left + width].sum()
        right += band[notes, max(0, system.right - width + 1):system.right + 1 + margin].sum()
    return float(np.log((left + 1) / (right + 1)))


def upright(page):
    """(page, turned): the page turned by 180 degrees if it is upside down (see `orientation`), else as it is."""
    if orientation(page) < UPSIDE_DOWN_BELOW:
        return np.ascontiguousarray(page[::-1, ::-1]), True
    return page, False


def binarize(page):
    """Dark pixels of a page: anything visibly darker than the paper.

    The cut sits close to the paper's colour (its median) because engraved staff lines are thin: at 835 px a
    verovio or LilyPond staff line is under a pixel wide and anti-aliased to mid-gray across two rows.
    """
    page = np.asarray(page, dtype=np.float32)
    return page < 0.85 * np.median(page)


@dataclasses.dataclass(frozen=True)
class _Staff:
    lines: tuple  # row centres of the 5 lines
    left: int
    right: int


def _find_staves(dark):
    """Staves, top to bottom: five lines one staff space apart that span the same columns."""
    lines = _find_lines(dark)
    if len(lines) < 5:
        return []
    centres = np.array([line[0] for line in lines])
    space = _staff_space(centres)
    if space is None:
        return []
    tolerance = max(1.5, 0.25 * space)
    # Greedy, top to bottom: each unused line starts a staff if four more lines follow one space apart.
    staves, used = [], np.zeros(len(lines), bool)
    for first in range(len(lines)):
        if used[first]:
            continue
        members = [first]
        for k in range(1, 5):
            gaps = np.abs(centres - (centres[first] + k * space))
            candidates = np.flatnonzero((gaps <= tolerance) & ~used)
            if candidates.size == 0:
                break
            members.append(candidates[np.argmin(gaps[candidates])])
        if len(members) < 5:
            continue
        lefts, rights = [lines[i][1] for i in members], [lines[i][2] for i in members]
        # A beam or a dash one staff space from a staff must not stand in for a staff line: all five span together.
        if min(rights) - max(lefts) < 0.8 * max(np.subtract(rights, lefts)):
            continue
        used[members] = True
        staves.append(_Staff(tuple(centres[members]), min(lefts), max(rights)))
    return sorted(staves, key=lambda staff: staff.lines[0])


def _find_lines(dark):
    """Horizontal lines as (row centre, left, right): bands of rows whose longest dark run is long."""
    padded = np.pad(dark, ((0, 0), (1, 1))).astype(np.int8)
    rows, edges = np.nonzero(np.diff(padded, axis=1))
    # Edges alternate start, end within each row.
    starts_rows, starts, ends = rows[0::2], edges[0::2], edges[1::2]
    lengths = ends - starts
    longest = np.zeros(dark.shape[0], int)
    np.maximum.at(longest, starts_rows, lengths)
    # Short enough for a one-bar last system; beams and lyric lines that pass are weeded out by the staff test.
    min_length = 0.1 * dark.shape[1]
    keep = lengths >= min_length
    left = np.full(dark.shape[0], dark.shape[1])
    right = np.full(dark.shape[0], -1)
    np.minimum.at(left, starts_rows[keep], starts[keep])
    np.maximum.at(right, starts_rows[keep], ends[keep] - 1)
    line_rows = np.flatnonzero(longest >= min_length)
    if line_rows.size == 0:
        return []
    lines = []
    for band in np.split(line_rows, np.flatnonzero(np.diff(line_rows) > 1) + 1):
        lines.append((float(band.mean()), int(left[band].min()), int(right[band].max())))
    return lines


def _staff_space(centres):
    """The most common distance between neighbouring lines: 4 of every 5 gaps within a staff are one space."""
    gaps = np.round(np.diff(centres)).astype(int)
    gaps = gaps[(gaps >= 3) & (gaps <= 60)]
    if gaps.size == 0:
        return None
    mode = np.bincount(gaps).argmax()
    near = np.diff(centres)[np.abs(np.diff(centres) - mode) <= 1]
    return float(near.mean())


def _bridged(dark, upper, lower):
    """Whether a vertical line crosses the whole gap between two staves (they then share a system)."""
    top, bottom = int(np.ceil(upper.lines[-1])) + 2, int(np.floor(lower.lines[0])) - 1
    if bottom <= top:
        return True
    left, right = min(upper.left, lower.left), max(upper.right, lower.right)
    # Look a little left of the staves too: the start bar sits at, or just before, the staff lines' left end.
    margin = int(round(upper.lines[1] - upper.lines[0]))
    columns = dark[top:bottom, max(0, left - margin):right + 1]
    return bool((columns.mean(axis=0) >= 0.9).any())


def _system_of(staves):
    spaces = [np.diff(staff.lines).mean() for staff in staves]
    return StaffSystem(
        top=int(round(staves[0].lines[0])),
        bottom=int(round(staves[-1].lines[-1])),
        left=min(staff.left for staff in staves),
        right=max(staff.right for staff in staves),
        num_staves=len(staves),
        staff_space=float(np.mean(spaces)),
    )


# ---------------------------------------------------------------------------------------------------------------
# Unrolling


@dataclasses.dataclass
class UnrolledScore:
    """Systems cut into strips and concatenated left to right, with the way back to the pages.

    Attributes:
        strip: float32 (STRIP_HEIGHT, width) in [0, 1], white = 1.
        pages: the pages the strip was cut from (scaled to the page width, deskewed, upright).
        systems: every system, in strip order.
        system_pages: page index of each system.
        system_numbers: index of each system on its page.
        system_starts: strip x of each system's first column.
        turned_pages: indices of the pages that were upside down and were turned.
    """

    strip: np.ndarray
    pages: list
    systems: list
    system_pages: np.ndarray
    system_numbers: np.ndarray
    system_starts: np.ndarray
    turned_pages: tuple = ()

    @property
    def width(self):
        return self.strip.shape[1]

    @property
    def systems_per_page(self):
        """How many staff systems were found on each page, 0 for a page without any."""
        return np.bincount(self.system_pages, minlength=len(self.pages)).tolist()

    def strip_to_page(self, x):
        """Maps strip columns to (page, system on the page, page column); accepts scalars or arrays."""
        x = np.asarray(x)
        k = np.clip(np.searchsorted(self.system_starts, x, side="right") - 1, 0, len(self.systems) - 1)
        lefts = np.array([system.left for system in self.systems])
        return self.system_pages[k], self.system_numbers[k], lefts[k] + (x - self.system_starts[k])

    def page_to_strip(self, page, system, page_x):
        """Maps (page, system on the page, page column) back to strip columns; accepts scalars or arrays."""
        # Systems are stored in (page, number) order, so one sorted key per system finds them all at once.
        stride = self.system_numbers.max() + 1
        keys = self.system_pages * stride + self.system_numbers
        wanted = np.asarray(page) * stride + np.asarray(system)
        k = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        if np.any(keys[k] != wanted) or np.any(np.asarray(system) >= stride):
            raise ValueError(f"No system {system} on page {page} in this score.")
        lefts = np.array([s.left for s in self.systems])
        return self.system_starts[k] + (np.asarray(page_x) - lefts[k])


def unroll(pages, strip_height=STRIP_HEIGHT):
    """Cuts every system into a strip centred on it and concatenates the strips left to right.

    Each page is deskewed first (see `deskew`) and turned if it is upside down (see `upright`);
    `UnrolledScore.pages` holds the deskewed, upright pages, and `turned_pages` which were turned. Pages without any
    staff system (a title page, an empty last page) are skipped; the map from strip to page keeps the original
    page numbers, and `UnrolledScore.systems_per_page` says how many systems each page gave.

    Args:
        pages: grayscale pages scaled to the page width (see `load_pages`).
        strip_height: rows of the strip, centred on each system's vertical centre.

    Returns:
        An `UnrolledScore`.

    Raises:
        NoStaffSystemsError: no page holds a staff system.

    Example:

    >>> score = unroll(load_pages("bwv66.6.musicxml"))
    >>> score.strip.shape
    (200, 1416)
    """
    strips, systems, system_pages, system_numbers = [], [], [], []
    pages, turned = zip(*(upright(deskew(page)) for page in pages)) if len(pages) else ((), ())
    for page_index, page in enumerate(pages):
        try:
            page_systems = detect_systems(page)
        except NoStaffSystemsError:
            continue
        for number, system in enumerate(page_systems):
            top = int(round(system.centre)) - strip_height // 2
            strips.append(_crop_white(page, top, top + strip_height, system.left, system.right + 1))
            systems.append(system)
            system_pages.append(page_index)
            system_numbers.append(number)
    if not systems:
        raise NoStaffSystemsError(f"None of the {len(pages)} page(s) holds a staff system.")
    widths = [strip.shape[1] for strip in strips]
    return UnrolledScore(
        strip=np.concatenate(strips, axis=1),
        pages=list(pages),
        systems=systems,
        system_pages=np.array(system_pages),
        system_numbers=np.array(system_numbers),
        system_starts=np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(int),
        turned_pages=tuple(int(k) for k in np.flatnonzero(turned)),
    )


def _crop_white(image, top, bottom, left, right):
    """image[top:bottom, left:right], padded with white where the window leaves the image."""
    out = np.ones((bottom - top, right - left), np.float32)
    rows = slice(max(top, 0), min(bottom, image.shape[0]))
    cols = slice(max(left, 0), min(right, image.shape[1]))
    out[rows.start - top:rows.stop - top, cols.start - left:cols.stop - left] = image[rows, cols]
    return out


# ---------------------------------------------------------------------------------------------------------------
# Snippets


def snippet_centres(width, hop=SNIPPET_HOP):
    """Evenly spaced snippet centres over a strip: one per `hop` columns, in the middle of each stretch."""
    return np.arange(hop // 2, width, hop)

