"""Engraving with LilyPond, MSMD's own engraver: page images, notehead boxes from point-and-click links.

The LilyPond source is written here from the music21 grand-staff score (not with musicxml2ly, which put every
note of a grand staff on the upper staff): one `Staff` per music21 staff, one `Voice` per voice index, each
pitch at a known line and column of the source. LilyPond, run with `-dpoint-and-click`, writes a PDF whose
link annotations point back to those lines and columns (`textedit://file.ly:line:column:end`); the link
rectangle of a notehead is its bounding box, as in MSMD. The link of each sounding pitch thus gives its box,
and the pitch's onset and duration come from the music21 score it was written from, so image and audio agree
by construction. Systems come from the staff lines of the rendered page (`keras_asr.sheet.detect_systems`).

A4 pages at LilyPond's default 20 pt staff rasterize at 835 px width to MSMD's page size with a 7 px staff space.

    from tfds_msmd.corpus import lilypond, sources
    engraving = lilypond.engrave(sources.load_score(sources.Source("x", "bach/bwv846.mxl")))
"""

import ctypes
import dataclasses
import fractions
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

from tfds_msmd.corpus import engrave as engrave_lib

LILYPOND_VERSION = "2.24.1"
DEFAULT_TEMPO_QPM = 120.0  # verovio's default too, so both engravers time an unmarked score alike
_DURATION_TYPES = {"breve": "\\breve", "whole": "1", "half": "2", "quarter": "4", "eighth": "8", "16th": "16",
                   "32nd": "32", "64th": "64", "128th": "128"}
_ALTERS = {-2: "eses", -1: "es", 0: "", 1: "is", 2: "isis"}
# Major key of each number of sharps (negative: flats); the key signature is all the grand staff keeps.
_KEYS = dict(zip(range(-7, 8), "ces ges des aes ees bes f c g d a e b fis cis".split()))
_CLEFS = {("G", 2): "treble", ("F", 4): "bass", ("C", 3): "alto", ("C", 4): "tenor", ("C", 1): "soprano",
          ("C", 2): "mezzosoprano", ("F", 3): "varbaritone", ("G", 1): "french", ("C", 5): "baritone"}
_VOICES = ("\\voiceOne", "\\voiceTwo", "\\voiceThree", "\\voiceFour")


@dataclasses.dataclass
class _Note:
    """A sounding pitch written at (line, column) of the LilyPond source (1-based line, 0-based column)."""

    line: int
    column: int
    staff: int
    pitch: int
    start: fractions.Fraction  # quarter notes from the start
    end: fractions.Fraction


class _Writer:
    """Accumulates LilyPond source text and remembers where each sounding pitch was written."""

    def __init__(self):
        self.lines = [""]
        self.notes = []

    def write(self, text):
        self.lines[-1] += text

    def newline(self):
        self.lines.append("")

    def here(self):
        return len(self.lines), len(self.lines[-1])

    def text(self):
        return "\n".join(self.lines) + "\n"


def lilypond_source(score, staff_size=20, extra_layout=""):
    """The LilyPond source of a grand-staff score and the sounding pitches written in it.

    Args:
        score: a two-staff music21 Score (as `sources.grand_staff` makes).
        staff_size: LilyPond's global staff size in points (20 is its default and MSMD's).
        extra_layout: LilyPond code added to the `\\layout` block (e.g. spacing overrides).

    Returns:
        (source text, list of `_Note` sorted by source position).
    """
    from music21 import stream

    staves = [p for p in score.parts if p.getElementsByClass(stream.Measure)]
    w = _Writer()
    w.write(f'\\version "{LILYPOND_VERSION}"')
    w.newline()
    w.write(f"#(set-global-staff-size {staff_size})")
    w.newline()
    w.write('\\paper { #(set-paper-size "a4") print-page-number = ##f tagline = ##f }')
    w.newline()
    w.write("\\header { tagline = ##f }")
    w.newline()
    w.write("\\score { \\new PianoStaff <<")
    w.newline()
    lengths = _measure_lengths(staves)
    for staff_idx, staff in enumerate(staves):
        measures = list(staff.getElementsByClass(stream.Measure))
        n_voices = max(len(list(m.voices)) or 1 for m in measures)
        w.write(f'\\new Staff = "s{staff_idx}" <<')
        w.newline()
        for v in range(n_voices):
            w.write(f'\\new Voice = "s{staff_idx}v{v}" {{ ')
            if n_voices > 1:
                w.write(_VOICES[min(v, len(_VOICES) - 1)] + " ")
            w.write("\\autoBeamOn ")
            w.newline()
            _write_voice(w, staff_idx, measures, v, lengths, first_voice=v == 0)
            w.write("}")
            w.newline()
        w.write(">>")
        w.newline()
    w.write(">> \\layout { " + extra_layout + " } }")
    w.newline()
    return w.text(), sorted(w.notes, key=lambda n: (n.line, n.column))


def _measure_lengths(staves):
    """Length of each measure in quarters: the longest voice of either staff."""
    from music21 import stream

    per_staff = [[fractions.Fraction(m.highestTime).limit_denominator(10000)
                  for m in s.getElementsByClass(stream.Measure)] for s in staves]
    return [max(ls) for ls in zip(*per_staff)]


def _write_voice(w, staff_idx, measures, v, lengths, first_voice):
    """Writes voice `v` of one staff, measure by measure; a measure without that voice gets a spacer."""
    from music21 import clef, key, meter

    open_ties = {}  # MIDI pitch -> _Note whose sound a tie carries on
    nominal = None
    pos = fractions.Fraction(0)
    for i, (m, length) in enumerate(zip(measures, lengths)):
        if first_voice:  # Staff-level events go into the first voice only.
            for ts in m.getElementsByClass(meter.TimeSignature):
                w.write(f"\\time {ts.numerator}/{ts.denominator} ")
                nominal = fractions.Fraction(ts.barDuration.quarterLength).limit_denominator(10000)
            for ks in m.getElementsByClass(key.KeySignature):
                w.write(f"\\key {_KEYS[max(-7, min(7, ks.sharps))]} \\major ")
        if nominal is not None and length != nominal:
            # Irregular bars (pickups, split repeats) keep their length, so barlines fall where the source has them.
            if i == 0:
                w.write(f"\\partial {_spacer_duration(length)} ")
            elif first_voice:
                w.write(f"\\set Timing.measureLength = #(ly:make-moment {length.numerator}/{length.denominator}) ")
        voices = list(m.voices)
        container = voices[v] if v < len(voices) else (m if v == 0 and not voices else None)
        clefs = [(fractions.Fraction(c.offset).limit_denominator(10000), c) for c in m.getElementsByClass(clef.Clef)]
        events = []
        if first_voice:
            events += [(o, 0, c) for o, c in clefs]
        if container is not None:
            events += [(fractions.Fraction(e.offset).limit_denominator(10000), 1, e) for e in container.notesAndRests]
        t = fractions.Fraction(0)
        for offset, kind, e in sorted(events, key=lambda x: (x[0], x[1])):
            if offset > t:
                w.write(f"s{_spacer_duration(offset - t)} ")
                t = offset
            if kind == 0:
                w.write(f'\\clef "{_clef_name(e)}" ')
                continue
            if offset < t:
                continue  # an element overlapping the previous one in its voice (rare in sources): dropped
            t = offset + _write_element(w, staff_idx, e, pos + offset, open_ties)
        if t < length:
            w.write(f"s{_spacer_duration(length - t)} ")
        if nominal is not None and length != nominal and i > 0 and first_voice:
            w.write(f"\\set Timing.measureLength = #(ly:make-moment {nominal.numerator}/{nominal.denominator}) ")
        w.write("|")
        w.newline()
        pos += length


def _write_element(w, staff_idx, e, start, open_ties):
    """Writes a note, chord or rest; returns its length in quarters."""
    from music21 import chord, note

    length = fractions.Fraction(e.duration.quarterLength).limit_denominator(10000)
    parts = _durations(e.duration)
    if isinstance(e, note.Rest):
        w.write(" ".join(f"r{d}" for d in parts) + " ")
        return length
    notes = list(e.notes) if isinstance(e, chord.Chord) else [e]
    for k, d in enumerate(parts):
        if len(notes) > 1:
            w.write("<")
        for j, n in enumerate(notes):
            if j:
                w.write(" ")
            tie = n.tie if n.tie is not None else e.tie
            if k == 0:
                _sound(w, staff_idx, n, tie, start, start + length, open_ties)
            w.write(_pitch_name(n.pitch))
        w.write(">" if len(notes) > 1 else "")
        tied_on = k < len(parts) - 1 or (e.tie is not None and e.tie.type in ("start", "continue"))
        w.write(d + (" ~ " if tied_on else " "))
    return length


def _sound(w, staff_idx, n, tie, start, end, open_ties):
    """Records the pitch about to be written: a new sounding note, or the continuation of a tied one."""
    midi = int(round(n.pitch.ps))
    held = open_ties.get(midi)
    if tie is not None and tie.type in ("continue", "stop") and held is not None and held.end == start:
        held.end = end
    else:
        held = _Note(*w.here(), staff_idx, midi, start, end)
        w.notes.append(held)
    if tie is not None and tie.type in ("start", "continue"):
        open_ties[midi] = held
    else:
        open_ties.pop(midi, None)


def _durations(duration):
    """LilyPond duration strings of a music21 duration; a complex duration becomes several tied ones."""
    components = duration.components if duration.type == "complex" else [duration]
    out = []
    for c in components:
        base = _DURATION_TYPES[c.type] + "." * c.dots
        tuplets = getattr(duration, "tuplets", ()) or ()
        ratio = fractions.Fraction(1)
        for t in tuplets:
            ratio *= fractions.Fraction(t.numberNotesNormal, t.numberNotesActual)
        # Tuplets are written as scaled durations: the notehead and timing are right, only the bracket is missing.
        out.append(base if ratio == 1 else f"{base}*{ratio.numerator}/{ratio.denominator}")
    return out


def _spacer_duration(quarters):
    """A LilyPond duration of any length in quarters, e.g. 3/2 -> "4*3/2"."""
    q = fractions.Fraction(quarters)
    return "4" if q == 1 else f"4*{q.numerator}/{q.denominator}"


def _pitch_name(pitch):
    """LilyPond (Dutch) name of a music21 pitch: C#5 -> cis''."""
    alter = int(round(pitch.accidental.alter)) if pitch.accidental is not None else 0
    octave = pitch.octave if pitch.octave is not None else 4
    marks = "'" * (octave - 3) if octave >= 3 else "," * (3 - octave)
    return pitch.step.lower() + _ALTERS[max(-2, min(2, alter))] + marks


def _clef_name(c):
    name = _CLEFS.get((c.sign, c.line), "treble")
    shift = getattr(c, "octaveChange", 0) or 0
    return name + ("_8" if shift == -1 else "^8" if shift == 1 else "")


def _tempo_map(score):
    """Function quarters -> seconds from the score's metronome marks (default 120 quarters per minute)."""
    from music21 import stream, tempo

    staff = next(p for p in score.parts if p.getElementsByClass(stream.Measure))
    marks = [(fractions.Fraction(0), DEFAULT_TEMPO_QPM)]
    for mm in staff.recurse().getElementsByClass(tempo.MetronomeMark):
        if mm.number:
            q = fractions.Fraction(mm.getOffsetInHierarchy(staff)).limit_denominator(10000)
            marks = [m for m in marks if m[0] != q] + [(q, float(mm.getQuarterBPM()))]
    marks.sort()
    starts = np.array([float(q) for q, _ in marks])
    bpm = np.array([b for _, b in marks])
    seconds_at = np.concatenate([[0.0], np.cumsum(np.diff(starts) * 60.0 / bpm[:-1])])

    def seconds(quarters):
        i = np.searchsorted(starts, float(quarters), "right") - 1
        return float(seconds_at[i] + (float(quarters) - starts[i]) * 60.0 / bpm[i])

    return seconds


def run_lilypond(source, out_dir, timeout=600):
    """Runs LilyPond with point-and-click links on a source text; returns the PDF path.

    Raises:
        RuntimeError: if LilyPond is missing or fails.
    """
    exe = shutil.which("lilypond")
    if exe is None:
        raise RuntimeError("LilyPond is not installed; run scripts/install.sh.")
    ly = os.path.join(out_dir, "score.ly")
    with open(ly, "w") as f:
        f.write(source)
    proc = subprocess.run([exe, "-dpoint-and-click", "-dno-include-settings", "-o", "score", "score.ly"],
                          cwd=out_dir, capture_output=True, text=True, timeout=timeout)
    pdf = os.path.join(out_dir, "score.pdf")
    if proc.returncode != 0 or not os.path.exists(pdf):
        raise RuntimeError(f"lilypond failed ({proc.returncode}): {proc.stderr.strip()[-800:]}")
    return pdf


def pdf_links(pdf_path):
    """Point-and-click links of a LilyPond PDF, per page.

    Returns:
        A list of pages, each a list of (line, column, (top, left, height, width) in PDF points from the top-left).
    """
    import pypdfium2
    import pypdfium2.raw as pdfium

    pdf = pypdfium2.PdfDocument(pdf_path)
    try:
        pages = []
        for page in pdf:
            height = page.get_height()
            links, pos, link = [], ctypes.c_int(0), pdfium.FPDF_LINK()
            while pdfium.FPDFLink_Enumerate(page.raw, ctypes.byref(pos), ctypes.byref(link)):
                rect = pdfium.FS_RECTF()
                pdfium.FPDFLink_GetAnnotRect(link, ctypes.byref(rect))
                action = pdfium.FPDFLink_GetAction(link)
                n = pdfium.FPDFAction_GetURIPath(pdf.raw, action, None, 0)
                buf = ctypes.create_string_buffer(n)
                pdfium.FPDFAction_GetURIPath(pdf.raw, action, buf, n)
                m = re.search(rb":(\d+):(\d+):\d+$", buf.value)
                if m:
                    box = (height - rect.top, rect.left, rect.top - rect.bottom, rect.right - rect.left)
                    links.append((int(m.group(1)), int(m.group(2)), box))
            pages.append(links)
        return pages
    finally:
        pdf.close()


def engrave(score, staff_size=20, extra_layout=""):
    """Engraves a grand-staff music21 score with LilyPond.

    Args:
        score: a two-staff music21 Score (e.g. from `sources.load_score`).
        staff_size: global staff size in points.
        extra_layout: extra `\\layout` code (spacing).

    Returns:
        An `engrave.Engraving`, as the verovio engraver returns.

    Raises:
        ValueError: if the score has no sounding notes, or LilyPond linked none of them.
        RuntimeError: if LilyPond fails.
    """
    from keras_asr import sheet

    source, notes = lilypond_source(score, staff_size, extra_layout)
    if not notes:
        raise ValueError("The score has no sounding notes.")
    seconds = _tempo_map(score)
    by_position = {(n.line, n.column): n for n in notes}
    with tempfile.TemporaryDirectory() as tmp:
        pdf = run_lilypond(source, tmp)
        links = pdf_links(pdf)
        pages = [np.round(p * 255).clip(0, 255).astype(np.uint8) for p in sheet.load_pdf(pdf)]
    scale = engrave_lib.PAGE_WIDTH_PX / 595.28  # A4 width in points
    systems, noteheads, found = [], [], set()
    for page, (image, page_links) in enumerate(zip(pages, links)):
        detected = sheet.detect_systems(image.astype(np.float32) / 255.0)
        boxes = [[s.top, s.left, s.bottom, s.right] for s in detected]
        centres = np.array([(s.top + s.bottom) / 2 for s in detected])
        for line, column, box in page_links:
            n = by_position.get((line, column))
            if n is None or (line, column) in found:
                continue
            found.add((line, column))
            top, left, height, width = (v * scale for v in box)
            system = int(np.argmin(np.abs(centres - (top + height / 2))))
            start, end = seconds(n.start), seconds(n.end)
            noteheads.append(engrave_lib.Notehead(page, system, n.staff, top, left, height, width, n.pitch,
                                                  start, end - start))
            b = boxes[system]  # Extend the system box to the noteheads on ledger lines.
            b[:] = min(b[0], top), min(b[1], left), max(b[2], top + height), max(b[3], left + width)
        systems.append(engrave_lib._corners(boxes))
    if len(found) < len(notes):
        # Every sounding pitch must have its box, or audio would hold notes the page does not show.
        raise ValueError(f"LilyPond linked {len(found)} of {len(notes)} sounding notes.")
    noteheads.sort(key=lambda n: (n.onset, n.pitch, n.staff))
    return engrave_lib.Engraving(pages, systems, noteheads)
