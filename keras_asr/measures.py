"""Measure numbers of an engraved score: where each measure sits on the page, and so on the unrolled strip.

A page image or a PDF carries no measure numbers, but a score file does: verovio writes each measure as a group
of its SVG page with the score's measure number (`data-n`, asked for by `pages.VEROVIO_OPTIONS`) and the staff
lines it draws across the measure. Those lines give the measure's columns; `numbers_at` carries them over to
strip columns of the `sheet.UnrolledScore`, so that an index can record the measure of each snippet and a
query's timeline can say "measure 12".

Example:

```python
pages, spans = keras_asr.pages.load_score("bwv66.6.musicxml")
score = keras_asr.sheet.unroll(pages)
keras_asr.measures.numbers_at(score, spans, [100, 900])   # array(['0', '6'], dtype='<U1')
```
"""

import re
import xml.etree.ElementTree as ET

import numpy as np

_SVG = "{http://www.w3.org/2000/svg}"
_TRANSLATE = re.compile(r"translate\(\s*(-?[\d.]+)[ ,]+(-?[\d.]+)\s*\)")


def spans_from_svg(svg, page_width):
    """The measures of one verovio SVG page: per system, top to bottom, a list of (left, right, number).

    `left` and `right` are the first and last page columns of the staff lines drawn across the measure, in a
    page `page_width` pixels wide; `number` is the score's measure number as written (a string: "12", "12a"),
    "" where the score gives none.
    """
    root = ET.fromstring(svg)
    scale = None
    for element in root.iter(_SVG + "svg"):
        if "definition-scale" in element.get("class", ""):
            scale = page_width / float(element.get("viewBox").split()[2])
    if scale is None:
        return []
    systems = []

    def walk(element, dx, dy):
        classes = element.get("class", "").split()
        found = _TRANSLATE.match(element.get("transform", ""))
        if found and element.tag == _SVG + "g":
            dx, dy = dx + float(found.group(1)), dy + float(found.group(2))
        if "system" in classes:
            systems.append([])
        elif "measure" in classes and systems:
            xs = [float(v) for line in _staff_lines(element)
                  for v in re.findall(r"-?[\d.]+", line.get("d", ""))[0::2]]
            if xs:
                systems[-1].append(((min(xs) + dx) * scale, (max(xs) + dx) * scale, element.get("data-n", "")))
            return
        for child in element:
            walk(child, dx, dy)

    walk(root, 0.0, 0.0)
    return [sorted(measures) for measures in systems]


def _staff_lines(measure):
    """The paths drawn directly in the measure's staff groups: its staff lines (ledger lines, ties and slurs sit
    in groups of their own)."""
    return [p for staff in measure.iter(_SVG + "g") if "staff" in staff.get("class", "").split()
            for p in staff.findall(_SVG + "path")]


def numbers_at(score, spans, strip_x):
    """The measure number at each strip column of an unrolled score ("" where it is not known).

    Args:
        score: a `sheet.UnrolledScore`.
        spans: per page the `spans_from_svg` of its SVG, or None (a page image or a PDF: no measures).
        strip_x: strip columns.

    Returns:
        A str array like `strip_x`. A page whose detected systems do not match the engraving's (a different
        count) gets "" throughout rather than numbers that might be shifted.
    """
    starts, numbers = [], []
    per_page = score.systems_per_page
    for k, system in enumerate(score.systems):
        page = int(score.system_pages[k])
        page_spans = spans[page] if spans is not None and page < len(spans) else None
        measures = page_spans[score.system_numbers[k]] if page_spans and len(page_spans) == per_page[page] else []
        start = int(score.system_starts[k])
        if not measures or measures[0][0] > system.left + 1:  # a stretch before the first measure: unknown
            starts.append(start)
            numbers.append("")
        for left, _, number in measures:
            starts.append(start + max(0.0, left - system.left))
            numbers.append(number)
    numbers = np.asarray(numbers, dtype=np.str_)
    k = np.clip(np.searchsorted(np.asarray(starts), np.asarray(strip_x, np.float64), side="right") - 1, 0, None)
    return numbers[k]
