"""The varied corpus configs: piano-like music from many collections, engraved and played in many ways.

`varied` mixes every keyboard work and piano part of the music21 corpus, a sample of the chorales, the same
number of other chorales set as keyboard figurations, a sample of the quartets and madrigals, and folk and
fiddle tunes over generated accompaniments (`textures`), with no collection meant to exceed about a quarter
of the training pairs (`python -m tfds_msmd.corpus.stats ROOT` reports the mix). Each piece is engraved
with one of the training setups (`setups`: verovio in four music fonts and layouts, or LilyPond), chosen by
a hash of its name; each training performance gets its own tempo ratio, SoundFont, General MIDI piano
program and style (dry, expressive, or expressive in a room; see `synth`).

- `varied`: splits and test renders as the `full` config (test: MuseScore_General, held out, dry, at the
  tempo set of Table 3); training tempo ratios 0.90-1.10.
- `varied_wide`: the same with training tempo ratios spread over 0.5-2.0, so tempo invariance can be learnt.
- `varied_heldout`: the generalization test: the test pieces of `varied` engraved with setups no training
  piece uses (verovio's Petaluma font at a larger staff, LilyPond at 18 pt) and played twice, expressively:
  by the held-out SoundFont in a room, and by the recorded piano of `sampler` (no SoundFont at all; the
  closest to a real recording the corpus has). Build it into its own root; its pieces form its "test" split.
"""

import hashlib

from keras_asr.geometry import TEMPO_RATIOS as TEST_TEMPO_RATIOS
from tfds_msmd.corpus import sources, synth

COLLECTIONS = (("keyboard", 0), ("piano_parts", 0), ("chorales", 100), ("chorale_figurations", 100),
               ("quartets", 5), ("madrigals", 25), ("ryansMammoth", 80), ("essenFolksong", 80),
               ("oneills1850", 80))
TRAIN_SETUPS = ("verovio", "verovio-bravura", "verovio-leland", "verovio-gootville", "lilypond")
HELDOUT_SETUPS = ("verovio-petaluma", "lilypond-18")
TRAIN_SOUNDFONTS = ("FluidR3_GM", "TimGM6mb")
VALID_SOUNDFONT = "FluidR3_GM"
TEST_SOUNDFONT = "MuseScore_General"
TRAIN_STYLES = ("dry", "expr", "expr", "room")  # half the training renders expressive, a quarter in a room
TRAIN_SOUNDS = tuple(f"{sf}-p{p}-{style}" for sf in TRAIN_SOUNDFONTS for p in synth.PIANO_PROGRAMS
                     for style in sorted(set(TRAIN_STYLES)))
HELDOUT_SOUND = f"{TEST_SOUNDFONT}-p0-room"
HELDOUT_PIANO = "SampledPiano-p0-expr"  # see tfds_msmd.corpus.sampler
TRAIN_RATIOS = (0.90, 0.95, 1.00, 1.05, 1.10)
WIDE_RATIOS = (0.50, 0.63, 0.79, 1.00, 1.26, 1.59, 2.00)  # log-spaced over 0.5-2.0
TRAIN_RENDERS_PER_PIECE = 10
CONFIGS = ("varied", "varied_wide", "varied_heldout")
# What the TFDS builder keeps of each config's performances (see tfds_msmd.msmd.msmd_dataset_builder).
SETTINGS = {
    "varied": dict(train_soundfonts=TRAIN_SOUNDS, train_ratios=(min(TRAIN_RATIOS), max(TRAIN_RATIOS)),
                   valid_performance=(1.0, VALID_SOUNDFONT), test_performance=(1.0, TEST_SOUNDFONT)),
    "varied_wide": dict(train_soundfonts=TRAIN_SOUNDS, train_ratios=(min(WIDE_RATIOS), max(WIDE_RATIOS)),
                        valid_performance=(1.0, VALID_SOUNDFONT), test_performance=(1.0, TEST_SOUNDFONT)),
    "varied_heldout": dict(train_soundfonts=(), train_ratios=(1.0, 1.0), valid_performance=(1.0, ""),
                           test_performance=(1.0, HELDOUT_SOUND)),
}


def plan(config_name):
    """(source, split, renders, engraving setup) per piece of a varied config, sorted by piece name."""
    if config_name not in CONFIGS:
        raise ValueError(f"Unknown varied config {config_name!r}; choose from {CONFIGS}.")
    found = {}
    for name, limit in COLLECTIONS:
        for s in sources.collection(name, limit):
            found.setdefault(s.piece, s)
    out = []
    for piece in sorted(found):
        source = found[piece]
        split = sources.split_of(source.work or piece)
        if config_name == "varied_heldout":
            if split == "test":
                out.append((source, "test", ((1.0, HELDOUT_SOUND), (1.0, HELDOUT_PIANO)),
                            _pick(HELDOUT_SETUPS, piece)))
            continue
        out.append((source, split, renders(piece, split, wide=config_name == "varied_wide"),
                    _pick(TRAIN_SETUPS, piece)))
    return out


def renders(piece, split, wide=False):
    """The (tempo ratio, sound) renders of a piece of `varied` (or `varied_wide`)."""
    if split == "valid":
        return ((1.0, VALID_SOUNDFONT),)
    if split == "test":
        return tuple((r, TEST_SOUNDFONT) for r in TEST_TEMPO_RATIOS)
    ratios = WIDE_RATIOS if wide else TRAIN_RATIOS
    out = []
    for k in range(TRAIN_RENDERS_PER_PIECE):
        program = _pick(synth.PIANO_PROGRAMS, f"{piece}#program{k}")
        style = _pick(TRAIN_STYLES, f"{piece}#style{k}")
        out.append((ratios[k % len(ratios)], f"{TRAIN_SOUNDFONTS[k % 2]}-p{program}-{style}"))
    return tuple(out)


def _pick(options, key):
    """A fixed choice among `options` by an MD5 hash of `key`."""
    return options[int(hashlib.md5(key.encode()).hexdigest(), 16) % len(options)]
