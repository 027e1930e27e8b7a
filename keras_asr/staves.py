"""Staff systems on a page: detection, deskewing and turning an upside-down page upright.

Staff systems are found with plain image processing (long horizontal runs of dark pixels, five equally spaced
lines a staff, staves joined into a system by a vertical line through the gap). A page is deskewed first (up to
`MAX_SKEW` degrees) and turned if it is upside down (`orientation`); `sheet.unroll` does both before it cuts the
systems into the strip.

Pages are float32 grayscale arrays in [0, 1] with white = 1 (see `pages`).

Example:

```python
page, turned = keras_asr.staves.upright(keras_asr.staves.deskew(page))
systems = keras_asr.staves.detect_systems(page)   # [StaffSystem(top, bottom, left, right, ...), ...]
```
"""

import dataclasses

import numpy as np
import skimage.transform


class NoStaffSystemsError(ValueError):
    """Raised when a page (or every page of a document) holds no staff system."""


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

    >>> systems = detect_systems(pages.load_pages("bwv66.6.musicxml")[0])
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
