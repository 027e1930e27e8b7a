"""Engraving setups of the offline corpus: which engraver, music font and layout a piece is engraved with.

Real pages differ in engraver, music font, staff size and note spacing. A setup names one such choice;
verovio setups change its SMuFL font (Leipzig, Bravura, Leland, Gootville, Petaluma), its `unit` (half a staff
space, 9 by default: about 7 px staff space at 835 px) and its spacing; LilyPond setups change the global
staff size (20 pt, LilyPond's default and MSMD's, is the same 7 px). Every setup gives notehead boxes exact
enough for the alignment check.

    from tfds_msmd.corpus import setups, sources
    engraving = setups.engrave(sources.load_score(source), "lilypond")
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Setup:
    """An engraver and its options.

    Attributes:
        engraver: "verovio" or "lilypond".
        options: verovio options (see `engrave.VEROVIO_OPTIONS`), or LilyPond keyword arguments of
            `lilypond.engrave` (`staff_size`, `extra_layout`), as (key, value) pairs.
    """

    engraver: str
    options: tuple = ()


SETUPS = {
    "verovio": Setup("verovio"),
    "verovio-bravura": Setup("verovio", (("font", "Bravura"), ("unit", 8.5))),
    "verovio-leland": Setup("verovio", (("font", "Leland"), ("unit", 9.5), ("spacingLinear", 0.3))),
    "verovio-gootville": Setup("verovio", (("font", "Gootville"), ("spacingNonLinear", 0.7))),
    # Held out of training for the generalization split: a handwriting-like font at a larger staff.
    "verovio-petaluma": Setup("verovio", (("font", "Petaluma"), ("unit", 10.0))),
    "lilypond": Setup("lilypond"),
    "lilypond-18": Setup("lilypond", (("staff_size", 18),)),
}


def engrave(score, setup="verovio"):
    """Engraves a grand-staff music21 score with a named setup; returns an `engrave.Engraving`."""
    if setup not in SETUPS:
        raise ValueError(f"Unknown engraving setup {setup!r}; choose from {sorted(SETUPS)}.")
    chosen = SETUPS[setup]
    if chosen.engraver == "lilypond":
        from tfds_msmd.corpus import lilypond

        return lilypond.engrave(score, **dict(chosen.options))
    from tfds_msmd.corpus import engrave as verovio_engrave

    return verovio_engrave.engrave(score, dict(chosen.options))
