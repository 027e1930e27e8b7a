"""Sheet music pages -> staff systems -> unrolled strip -> snippet centres.

The sheet side of the data flow, for any score a user brings: `pages` reads images, PDFs and symbolic scores as
pages 835 px wide; `staves` deskews each page, turns it upright and finds its staff systems; here every system
becomes a 200-row strip centred on it, the strips are concatenated left to right (the "unrolled score"), and
snippet centres are spaced over the strip for `windows.snippets` to cut the sheet encoder's snippets.

The names of `pages` and `staves` that callers know as `sheet.load_pages`, `sheet.detect_systems`, ... are
re-exported here.

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

import numpy as np

from keras_asr.geometry import PAGE_WIDTH  # noqa: F401 (with the re-exports below, the names callers use)
from keras_asr.geometry import SNIPPET_HOP
from keras_asr.geometry import SNIPPET_WINDOW  # noqa: F401
from keras_asr.geometry import STRIP_HEIGHT
from keras_asr.pages import ENGRAVE_TIMEOUT  # noqa: F401
from keras_asr.pages import IMAGE_SUFFIXES  # noqa: F401
from keras_asr.pages import SCORE_SUFFIXES  # noqa: F401
from keras_asr.pages import VEROVIO_OPTIONS  # noqa: F401
from keras_asr.pages import XML_SUFFIXES  # noqa: F401
from keras_asr.pages import EngravingError  # noqa: F401
from keras_asr.pages import engrave  # noqa: F401
from keras_asr.pages import engrave_svg  # noqa: F401
from keras_asr.pages import load_image  # noqa: F401
from keras_asr.pages import load_pages  # noqa: F401
from keras_asr.pages import load_pdf  # noqa: F401
from keras_asr.pages import load_score  # noqa: F401
from keras_asr.pages import rasterize_svg  # noqa: F401
from keras_asr.pages import to_page_width  # noqa: F401
from keras_asr.staves import MAX_SKEW  # noqa: F401
from keras_asr.staves import UPSIDE_DOWN_BELOW  # noqa: F401
from keras_asr.staves import NoStaffSystemsError
from keras_asr.staves import StaffSystem  # noqa: F401
from keras_asr.staves import binarize  # noqa: F401
from keras_asr.staves import deskew
from keras_asr.staves import detect_systems
from keras_asr.staves import estimate_skew  # noqa: F401
from keras_asr.staves import orientation  # noqa: F401
from keras_asr.staves import upright


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

    Each page is deskewed first (see `staves.deskew`) and turned if it is upside down (see `staves.upright`);
    `UnrolledScore.pages` holds the deskewed, upright pages, and `turned_pages` which were turned. Pages without any
    staff system (a title page, an empty last page) are skipped; the map from strip to page keeps the original
    page numbers, and `UnrolledScore.systems_per_page` says how many systems each page gave.

    Args:
        pages: grayscale pages scaled to the page width (see `pages.load_pages`).
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
            strips.append(system_strip(page, system.centre, system.left, system.right + 1, strip_height))
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


def system_strip(page, centre, left, right, strip_height=STRIP_HEIGHT):
    """A staff system's strip: `strip_height` rows centred on its centre row, columns `left .. right - 1`,
    white past the page. The one cut of `unroll` and of the corpus reader's engraved systems."""
    top = int(round(centre)) - strip_height // 2
    return crop_white(page, top, top + strip_height, left, right)


def crop_white(image, top, bottom, left, right):
    """image[top:bottom, left:right], padded white where the window leaves the image.

    A uint8 image gives uint8 (white 255), any other float32 (white 1)."""
    uint8 = image.dtype == np.uint8
    out = np.full((bottom - top, right - left), 255 if uint8 else 1.0, np.uint8 if uint8 else np.float32)
    r0, r1 = max(top, 0), min(bottom, image.shape[0])
    c0, c1 = max(left, 0), min(right, image.shape[1])
    if r1 > r0 and c1 > c0:  # a window wholly outside would make negative slice ends count from the far side
        out[r0 - top:r1 - top, c0 - left:c1 - left] = image[r0:r1, c0:c1]
    return out


# ---------------------------------------------------------------------------------------------------------------
# Snippets


def snippet_centres(width, hop=SNIPPET_HOP):
    """Evenly spaced snippet centres over a strip: one per `hop` columns, in the middle of each stretch."""
    return np.arange(hop // 2, width, hop)

