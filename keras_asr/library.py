"""The sheet side of the retrieval application: a score collection into a sheet index, a score region into queries.

`index_scores` unrolls each score file (`sheet`) and embeds a snippet every `hop` px of it, with where the
snippet sits (piece, page, system, x, measure); `sheet_queries` cuts the snippets of a region of a score, or of
an image crop of sheet music, to look up in an index of recordings (`identification.locate`). `index_files` is
the loop both kinds of index are built with (`recordings.index_recordings` is the audio side).

Example:

```python
index, sources, skipped = index_scores(encoders, ["bwv269.musicxml", "op6_2.pdf", "page.png"])
snippets, positions = sheet_queries("op6_2.pdf", page=2, system=1)
```
"""

import os
import pathlib

import numpy as np

from keras_asr import index as index_lib
from keras_asr import measures
from keras_asr import pages as pages_lib
from keras_asr import sheet
from keras_asr import staves
from keras_asr import windows
from keras_asr.encoding import RetrievalError

# Staff space of verovio's engraving at 835 px (7.1-7.25 px on a chorale and a mazurka of music21's corpus).
REFERENCE_STAFF_SPACE = 7.2


def index_scores(encoders, paths, hop=sheet.SNIPPET_HOP, log=None):
    """Embeds snippets every `hop` px of the unrolled score of each file.

    A file that cannot be read or holds no staff system is reported and skipped.

    Args:
        encoders: an `Encoders`.
        paths: page images, PDFs or score files; each is one piece, named after its file.
        hop: px of unrolled score between snippet centres (`SNIPPET_HOP`, 16; SPEC: 50).
        log: optional callable taking one progress line.

    Returns:
        (index, sources, skipped): the `SnippetIndex`, `{piece: absolute path}`, and `{path: reason}`.
    """

    def load(path):
        pages, spans = pages_lib.load_score(path)
        score = sheet.unroll(pages)
        if not len(sheet.snippet_centres(score.width, hop)):
            raise ValueError(f"its unrolled score is {score.width} px long, and snippets every --hop {hop} px "
                             f"start {hop // 2} px in: no snippet; give a --hop under {2 * score.width} px")
        return score, spans

    def add(index, piece, loaded):
        return add_score(index, encoders, piece, *loaded, hop=hop)

    # No staff system; unreadable image, PDF or score; shorter than the first snippet centre.
    return index_files(encoders, paths, load, (ValueError, OSError, RuntimeError), add, log)


def add_score(index, encoders, piece, score, spans=None, hop=sheet.SNIPPET_HOP):
    """Adds the snippets every `hop` px of an `UnrolledScore` to a sheet index; returns a progress line.

    `spans` are the score's measures (`pages.load_score`); each snippet records the measure it is centred in,
    "" where there are none (a page image, a PDF).
    """
    centres = sheet.snippet_centres(score.width, hop)
    page, system, page_x = score.strip_to_page(centres)
    index.add(
        encoders.sheet_at(score.strip, centres),
        piece=[piece] * len(centres), page=page, system=system, page_x=page_x, strip_x=centres,
        measure=measures.numbers_at(score, spans, centres),
    )
    per_page = "+".join(map(str, score.systems_per_page))  # a page that lost its systems shows as 0
    turned = score.turned_pages and f", upside-down page(s) {', '.join(str(k + 1) for k in score.turned_pages)} turned"
    return (f"piece {piece}, {len(set(page.tolist()))} page(s), {len(score.systems)} system(s) ({per_page} by "
            f"page), {len(centres)} snippets{turned or ''}")


def index_files(encoders, paths, load, errors, add, log=None):
    """The loop of `index_scores` and `recordings.index_recordings`: each file is loaded, named after its stem
    (made unique) and added to one index; a file whose `load` raises one of `errors` is reported and skipped.

    Args:
        load: path -> the file's content.
        errors: exception types that mean "skip this file".
        add: (index, name, content) -> the file's progress line, after adding its rows to the index.
    """
    log = log or (lambda line: None)
    index = index_lib.SnippetIndex(encoders.model_id)
    sources, skipped = {}, {}
    for k, path in enumerate(paths, 1):
        prefix = f"[{k}/{len(paths)}] {path}"
        try:
            content = load(path)
        except errors as e:
            skipped[path] = str(e)
            log(f"{prefix}: skipped: {e}")
            continue
        name = _unique_name(pathlib.Path(path).stem, sources)
        line = add(index, name, content)
        sources[name] = os.path.abspath(path)
        log(f"{prefix}: {line}")
    return index, sources, skipped


def _unique_name(stem, taken):
    name, k = stem, 2
    while name in taken:
        name, k = f"{stem}~{k}", k + 1
    return name


def sheet_queries(path, page=None, system=None, x=None, hop=sheet.SNIPPET_HOP):
    """Snippets to look up in recordings: a region of a score file, or an image crop of sheet music.

    A score, PDF or page image is unrolled as in the index, and `page`/`system`/`x` (counted from 1; x in
    pixels of the 835-px page) narrow it down: one snippet at `x`, or snippets every `hop` px of the system, the
    page, or the whole score. An image without `page` is a crop of any size: it is rescaled so that its staff
    space is that of an engraved 835-px page, and cut into snippets every `hop` px.

    Returns:
        (snippets (n, 80, 100), positions): one dict of page/system/x per snippet (None for a crop).

    Raises:
        staves.NoStaffSystemsError: no staff system in the file or region.
        RetrievalError: no such page or system.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise RetrievalError(f"No sheet file at {path}.")
    if path.suffix.lower() in pages_lib.IMAGE_SUFFIXES and page is None:
        score = sheet.unroll([_rescale_crop(pages_lib.load_image(path))])
        centres = sheet.snippet_centres(score.width, hop)
        return windows.snippets(score.strip, centres), [None] * len(centres)
    score = sheet.unroll(pages_lib.load_pages(path))
    keep = np.ones(len(score.systems), bool)
    if page is not None:
        keep &= score.system_pages == page - 1
        if system is not None:
            keep &= score.system_numbers == system - 1
        if not keep.any():
            where = f"page {page}" + (f", system {system}" if system is not None else "")
            raise RetrievalError(f"{path} has no staff system at {where}.")
    elif system is not None or x is not None:
        raise RetrievalError("--system and --x need --page.")
    if x is not None:
        if system is None:
            raise RetrievalError("--x needs --system.")
        box = score.systems[int(np.flatnonzero(keep)[0])]
        if not box.left <= x <= box.right:
            raise RetrievalError(
                f"x = {x:g} lies outside page {page}, system {system} (columns {box.left}-{box.right})."
            )
        centres = np.atleast_1d(score.page_to_strip(page - 1, system - 1, x))
    else:
        all_centres = sheet.snippet_centres(score.width, hop)
        systems_of = np.searchsorted(score.system_starts, all_centres, side="right") - 1
        centres = all_centres[keep[systems_of]]
        if not len(centres):
            raise RetrievalError(f"The selected region of {path} is narrower than --hop ({hop} px): give --x.")
    pages, systems, xs = score.strip_to_page(centres)
    positions = [{"page": int(p) + 1, "system": int(s) + 1, "x": float(v)} for p, s, v in zip(pages, systems, xs)]
    return windows.snippets(score.strip, centres), positions


def _rescale_crop(image):
    """Scales a crop so that its staff space matches an engraved page's."""
    systems = staves.detect_systems(image)
    space = np.mean([s.staff_space for s in systems])
    rows = max(1, round(image.shape[0] * REFERENCE_STAFF_SPACE / space))
    cols = max(1, round(image.shape[1] * REFERENCE_STAFF_SPACE / space))
    import skimage.transform

    return skimage.transform.resize(image, (rows, cols), order=1, anti_aliasing=space > REFERENCE_STAFF_SPACE,
                                    preserve_range=True).astype(np.float32)
