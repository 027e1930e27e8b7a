"""Engraving with verovio: page images at 835 px width, notehead boxes, staff systems and note onsets.

verovio lays the MusicXML out on A4 pages (2100 x 2970 units, staff space 18 units), which rasterize at
835 px width to MSMD's page size (835 x 1181) and roughly its staff size (7 px staff space, as LilyPond's
20 pt staff at 150 dpi scaled to 835 px). Positions come from the SVG: a notehead is a SMuFL glyph placed
at its left edge on the staff position, so its box follows from the font's glyph metrics. Onsets come from
verovio's timemap of the same document, so image and audio agree by construction. The timemap lists tie
continuations as onsets; they are dropped via the MEI tie end ids, and the tie start note lasts until the
chain's end. Repeats are never unfolded (the score is read, and played, straight through).
"""

import dataclasses
import functools
import io
import os
import re
import xml.etree.ElementTree as ET

import numpy as np

from keras_asr import sheet

PAGE_WIDTH_PX = 835
# The page layout of keras_asr.sheet (so scores engraved at query time look like the corpus), plus
# deterministic ids and no repeat expansion.
VEROVIO_OPTIONS = {**sheet.VEROVIO_OPTIONS, "expandNever": True, "xmlIdSeed": 1}
_SVG = "{http://www.w3.org/2000/svg}"
_XLINK = "{http://www.w3.org/1999/xlink}href"


@dataclasses.dataclass
class Notehead:
    """A notehead that starts a sounding note.

    Attributes:
        page: page index (0-based).
        system: system index on its page.
        staff: staff index in the system (0 upper, 1 lower); the note's MIDI track.
        top, left, height, width: bounding box in page pixels.
        pitch: MIDI pitch.
        onset: onset in seconds at the score's tempo.
        duration: duration in seconds at the score's tempo (through ties).
    """

    page: int
    system: int
    staff: int
    top: float
    left: float
    height: float
    width: float
    pitch: int
    onset: float
    duration: float

    @property
    def centre(self):
        """(row, col) of the box centre in page pixels."""
        return self.top + self.height / 2, self.left + self.width / 2


@dataclasses.dataclass
class Engraving:
    """A rendered score.

    Attributes:
        pages: grayscale uint8 page images (white 255), each 835 px wide.
        systems: per page a float32 (s, 4, 2) array of system corners (y, x): top-left, top-right,
            bottom-right, bottom-left; the box spans the system's staff lines and all its noteheads.
        noteheads: the sounding noteheads, sorted by (onset, pitch, staff): index i is note event i.
    """

    pages: list
    systems: list
    noteheads: list


def engrave(score, options=None):
    """Engraves a music21 score with verovio.

    Args:
        score: a music21 Score (e.g. from `sources.load_score`).
        options: verovio options that replace `VEROVIO_OPTIONS`' (e.g. another "font", "unit" or spacing).

    Returns:
        An `Engraving`.

    Raises:
        ValueError: if verovio cannot load the score or it has no sounding notes.
    """
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    from music21.exceptions21 import Music21Exception

    exporter = GeneralObjectExporter(score)
    try:
        xml = exporter.parse()
    except Music21Exception:
        # music21's notation pass fails on some overfull source measures (a long final chord); the sources
        # are notated already, so export them as they are.
        exporter.makeNotation = False
        xml = exporter.parse()
    return engrave_musicxml(xml.decode("utf-8"), options)


def engrave_musicxml(musicxml, options=None):
    """Engraves a MusicXML document (a string); see `engrave`."""
    import verovio

    verovio.enableLog(verovio.LOG_OFF)
    tk = verovio.toolkit()
    options = {**VEROVIO_OPTIONS, **(options or {})}
    tk.setOptions(options)
    if not tk.loadData(musicxml):
        raise ValueError("verovio could not load the MusicXML.")
    onsets, offsets = _timemap(tk.renderToTimemap({"includeRests": False, "includeMeasures": False}))
    tie_next = _ties(tk.getMEI())
    tie_ends = set(tie_next.values())
    pages, systems, noteheads = [], [], []
    for page in range(tk.getPageCount()):
        svg = tk.renderToSVG(page + 1)
        pages.append(_rasterize(svg))
        boxes, heads = _parse_svg(svg, options["font"])
        for system, staff, note_id, box in heads:
            if note_id not in onsets or note_id in tie_ends:
                continue
            last = note_id
            while last in tie_next:
                last = tie_next[last]
            pitch = int(tk.getMIDIValuesForElement(note_id)["pitch"])
            onset = onsets[note_id]
            noteheads.append(
                Notehead(page, system, staff, *box, pitch, onset, offsets.get(last, onset) - onset)
            )
            top, left, height, width = box
            b = boxes[system]  # Extend the system box to the noteheads on ledger lines.
            b[:] = min(b[0], top), min(b[1], left), max(b[2], top + height), max(b[3], left + width)
        systems.append(_corners(boxes))
    if not noteheads:
        raise ValueError("The score has no sounding notes.")
    noteheads.sort(key=lambda n: (n.onset, n.pitch, n.staff))
    return Engraving(pages, systems, noteheads)


def _timemap(timemap):
    """Note id -> onset and offset in seconds, from verovio's timemap."""
    onsets, offsets = {}, {}
    for entry in timemap:
        t = entry["tstamp"] / 1000.0
        for i in entry.get("on", ()):
            onsets.setdefault(i, t)
        for i in entry.get("off", ()):
            offsets[i] = t
    return onsets, offsets


def _ties(mei):
    """Tie start note id -> tie end note id, from the MEI."""
    ties = {}
    for tie in re.findall(r"<tie\b[^>]*>", mei):
        start, end = re.search(r'startid="#([^"]+)"', tie), re.search(r'endid="#([^"]+)"', tie)
        if start and end:
            ties[start.group(1)] = end.group(1)
    return ties


def _rasterize(svg):
    """SVG page -> grayscale uint8 image 835 px wide on white."""
    import cairosvg
    from PIL import Image

    w, h = _page_size(svg)
    png = cairosvg.svg2png(
        bytestring=svg.encode("utf-8"), output_width=PAGE_WIDTH_PX, output_height=round(h * PAGE_WIDTH_PX / w),
        background_color="white",
    )
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"))


def _page_size(svg):
    """Width and height of the page in verovio's internal units (the inner viewBox)."""
    m = re.search(r'class="definition-scale"[^>]*viewBox="0 0 (\d+) (\d+)"', svg)
    return float(m.group(1)), float(m.group(2))


@functools.lru_cache(maxsize=None)
def _glyphs(font="Leipzig"):
    """SMuFL code -> (x, y, w, h) of the font's glyph box in font units (1000 per em, y up)."""
    import verovio

    path = os.path.join(os.path.dirname(verovio.__file__), "data", f"{font}.xml")
    root = ET.parse(path).getroot()
    return {g.get("c"): tuple(float(g.get(k)) for k in "xywh") for g in root.iter("g") if g.get("w")}


def _parse_svg(svg, font="Leipzig"):
    """Systems and noteheads of one SVG page (engraved in music font `font`), in page pixels.

    Returns:
        boxes: per system a [top, left, bottom, right] list spanning its staff lines.
        heads: (system, staff, note id, (top, left, height, width)) per notehead.
    """
    w, _ = _page_size(svg)
    scale = PAGE_WIDTH_PX / w
    glyphs = _glyphs(font)
    boxes, heads = [], []
    staves_seen = [0]  # Staves met so far in the current measure: a staff's index.

    def walk(el, dx, dy, system, staff, note_id):
        cls = el.get("class", "").split()
        m = re.match(r"translate\(\s*(-?[\d.]+)[ ,]+(-?[\d.]+)\)", el.get("transform", ""))
        if m and el.tag == _SVG + "g":
            dx, dy = dx + float(m.group(1)), dy + float(m.group(2))
        if "system" in cls:
            boxes.append([np.inf, np.inf, -np.inf, -np.inf])
            system = len(boxes) - 1
        elif "measure" in cls:
            staves_seen[0] = 0
        elif "staff" in cls:
            staff = staves_seen[0]
            staves_seen[0] += 1
            for line in el.findall(_SVG + "path"):
                nums = [float(v) for v in re.findall(r"-?[\d.]+", line.get("d", ""))]
                xs, ys = (np.array(nums[0::2]) + dx) * scale, (np.array(nums[1::2]) + dy) * scale
                b = boxes[system]
                b[:] = min(b[0], ys.min()), min(b[1], xs.min()), max(b[2], ys.max()), max(b[3], xs.max())
        elif "note" in cls:
            note_id = el.get("id")
        elif "notehead" in cls:
            use = el.find(_SVG + "use")
            m = re.match(r"translate\((-?[\d.]+), (-?[\d.]+)\) scale\(([\d.]+), ([\d.]+)\)", use.get("transform"))
            code = use.get(_XLINK).lstrip("#").split("-")[0]
            gx, gy, gw, gh = glyphs[code]
            tx, ty, sx, sy = (float(v) for v in m.groups())
            left, top = (dx + tx + sx * gx) * scale, (dy + ty - sy * (gy + gh)) * scale
            heads.append((system, staff, note_id, (top, left, sy * gh * scale, sx * gw * scale)))
            return
        for child in el:
            walk(child, dx, dy, system, staff, note_id)

    walk(ET.fromstring(svg), 0.0, 0.0, -1, -1, None)
    return boxes, heads


def _corners(boxes):
    """[top, left, bottom, right] boxes -> float32 (s, 4, 2) corners (y, x) TL, TR, BR, BL."""
    corners = [[(t, l), (t, r), (b, r), (b, l)] for t, l, b, r in boxes]
    return np.asarray(corners, np.float32).reshape(-1, 4, 2)
