"""The MSMD v1.1 on-disk layout: one reader for the real MSMD and the offline corpus (`layout_writer` writes it).

A piece folder `<root>/<piece>/` holds:

```
scores/<piece>_ly/img/NN.png            page images, grayscale, 835 px wide
scores/<piece>_ly/coords/notes_NN.npy   float32 (n, 2): notehead centres (y, x)
scores/<piece>_ly/coords/systems_NN.npy float32 (s, 4, 2): system corners (y, x) TL, TR, BR, BL
scores/<piece>_ly/mung/NN.xml           MuNG: noteheads with pitch and, per performance P, the alignment
                                        P_note_event_idx, P_onset_frame, P_onset_seconds
performances/<piece>_tempo-<ratio*1000>_<soundfont>/
    <name>.midi                         the performance MIDI
    <name>.wav|.flac (optional)         its audio (real MSMD ships none)
    features/<name>_spec.npy            (92, N) spectrogram at 20 fps
    features/<name>_notes.npy           (n, 5) note events: onset s, pitch, duration s, track, channel
    features/<name>_onsets.npy          (n,) onset frame of each note event
```

and `<root>/all_split.yaml` (real MSMD) or `<root>/split.yaml` (offline corpus) lists the train, valid and test
pieces.

The reader turns a piece into per-performance records for training: the unrolled score (every system cut into
a 200-row strip centred on it, the strips concatenated left to right), the performance's spectrogram, and one
(onset frame, notehead x on the strip) pair per unique onset frame.
"""

import dataclasses
import glob
import os
import re
import xml.etree.ElementTree as ET

import numpy as np

from keras_asr import sheet
from keras_asr.geometry import STRIP_HEIGHT  # noqa: F401 (msmd_dataset_builder reads layout.STRIP_HEIGHT)

SPLIT_FILES = ("all_split.yaml", "split.yaml")
# MuNG class names of a full notehead: current MuNG, and the muscima 0.x spelling the MSMD archive uses.
NOTEHEAD_CLASSES = ("noteheadFull", "notehead-full")
_PERFORMANCE_RE = re.compile(r"_tempo-(\d+)_(.+)$")


class LayoutError(ValueError):
    """Raised when a folder does not follow the MSMD layout; the message names the missing or bad file."""


# ---------------------------------------------------------------------------------------------------------------
# Reading


@dataclasses.dataclass
class Notehead:
    """A MuNG notehead: its box centre on its page, its pitch, and its data items (the alignment)."""

    page: int
    y: float
    x: float
    pitch: int
    data: dict


@dataclasses.dataclass
class Score:
    """A piece's unrolled score.

    Attributes:
        strip: uint8 (200, width), white = 255.
        noteheads: every notehead assigned to a system, in strip order.
        strip_x: float32 (len(noteheads),) notehead centres' columns on the strip.
        system_starts: strip column where each system begins.
        num_pages: number of page images.
        unrolled_from: "pages" (the application's staff detection, `keras_asr.sheet.unroll`) or
            "engraving" (the engraving's system boxes, where the detector disagreed with them).
    """

    strip: np.ndarray
    noteheads: list
    strip_x: np.ndarray
    system_starts: np.ndarray
    num_pages: int
    unrolled_from: str = "pages"


@dataclasses.dataclass
class PerformanceRecord:
    """One performance of a piece, paired with the piece's unrolled score.

    Attributes:
        piece: piece name, `Composer__opus__file`.
        performance: performance folder name, `<piece>_tempo-<ratio*1000>_<soundfont>`.
        tempo_ratio: tempo relative to the score's MIDI (1.0 = as written).
        soundfont: name of the SoundFont the audio was rendered with.
        strip: uint8 (200, width) unrolled score, white = 255.
        spectrogram: float32 (92, N), 20 frames per second.
        onset_frames: int32 (k,) unique onset frames, ascending.
        notehead_x: float32 (k,) strip column of the notehead of each onset frame.
    """

    piece: str
    performance: str
    tempo_ratio: float
    soundfont: str
    strip: np.ndarray
    spectrogram: np.ndarray
    onset_frames: np.ndarray
    notehead_x: np.ndarray

    @property
    def composer(self):
        return self.piece.split("__")[0]


def score_dir(piece_dir):
    """`<piece_dir>/scores/<piece>_ly`, or the only score folder there is."""
    piece = os.path.basename(os.path.normpath(piece_dir))
    preferred = os.path.join(piece_dir, "scores", f"{piece}_ly")
    if os.path.isdir(preferred):
        return preferred
    found = sorted(glob.glob(os.path.join(piece_dir, "scores", "*", "img")))
    if not found:
        raise LayoutError(f"No score in {piece_dir}: expected {preferred}/img/01.png, ...")
    return os.path.dirname(found[0])


def page_numbers(score_path):
    """The page numbers NN of `img/NN.png`, ascending."""
    pages = sorted(int(os.path.splitext(f)[0]) for f in os.listdir(os.path.join(score_path, "img"))
                   if re.fullmatch(r"\d+\.png", f))
    if not pages:
        raise LayoutError(f"No page images in {score_path}/img (expected 01.png, 02.png, ...).")
    return pages


def read_mung(path, page=0):
    """Reads the full noteheads of a MuNG page (current `<Node>` or muscima `<CropObject>` spelling).

    Args:
        path: the MuNG XML file.
        page: page index stored on the returned noteheads.

    Returns:
        A list of `Notehead`, in file order; data items are typed by their `type` attribute.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as e:
        raise LayoutError(f"Cannot read MuNG file {path}: {e}") from e
    casts = {"int": int, "float": float, "str": str}
    noteheads = []
    for node in root.iter():
        if node.tag not in ("Node", "CropObject"):
            continue
        cls = node.findtext("ClassName") or node.findtext("MLClassName")
        if cls not in NOTEHEAD_CLASSES:
            continue
        top, left = float(node.findtext("Top")), float(node.findtext("Left"))
        height, width = float(node.findtext("Height")), float(node.findtext("Width"))
        data = {}
        for item in node.iterfind("Data/DataItem"):
            data[item.get("key")] = casts.get(item.get("type"), str)(item.text)
        pitch = data.get("midi_pitch_code")
        noteheads.append(Notehead(page, top + height / 2, left + width / 2, -1 if pitch is None else int(pitch),
                                  data))
    return noteheads


def read_score(piece_dir):
    """Reads a piece's pages and noteheads and unrolls them into one strip, as the application does.

    The pages go through `keras_asr.sheet.unroll`, the staff-system detection and unrolling that
    `keras-asr index` applies to a user's pages, so a model trains on strips cut exactly as the ones it will
    be queried with; the engraving's coordinates only place the noteheads on them. A notehead belongs to the
    detected system whose rows contain it, or else to the one whose centre is nearest (ledger-line notes).
    Where the detector finds another number of systems on a page than the engraving has
    (`coords/systems_NN.npy`), the piece is unrolled from the engraving's system boxes instead, and
    `Score.unrolled_from` says so.

    Args:
        piece_dir: the piece folder.

    Returns:
        A `Score`.
    """
    from PIL import Image

    path = score_dir(piece_dir)
    pages, boxes, heads = [], [], []
    numbers = page_numbers(path)
    for index, number in enumerate(numbers):
        systems_file = os.path.join(path, "coords", f"systems_{number:02d}.npy")
        mung_file = os.path.join(path, "mung", f"{number:02d}.xml")
        for f in (systems_file, mung_file):
            if not os.path.isfile(f):
                raise LayoutError(f"Missing {f} (page {number:02d} of {piece_dir}).")
        with Image.open(os.path.join(path, "img", f"{number:02d}.png")) as image:
            pages.append(np.asarray(image.convert("L")))
        boxes.append(_load_npy(systems_file).reshape(-1, 4, 2))
        heads.append(read_mung(mung_file, index))
    if not any(len(b) for b in boxes):
        raise LayoutError(f"No staff system in {path}/coords/systems_NN.npy.")
    detected = _detected_systems(pages)
    if detected is not None and detected[0] == [len(b) for b in boxes]:
        _, strip, systems, starts = detected
        unrolled_from = "pages"
    else:
        strip, systems, starts = _engraved_systems(pages, boxes)
        unrolled_from = "engraving"
    noteheads, strip_x = [], []
    for page, page_heads in enumerate(heads):
        # Once per page: which of its systems each notehead belongs to.
        on_page = [k for k, system in enumerate(systems) if system[0] == page]
        if not on_page or not page_heads:
            continue
        ys = np.array([n.y for n in page_heads])
        tops = np.array([systems[k][1] for k in on_page])
        bottoms = np.array([systems[k][2] for k in on_page])
        inside = (ys[:, None] >= tops) & (ys[:, None] <= bottoms)
        nearest = np.argmin(np.abs(ys[:, None] - (tops + bottoms) / 2), axis=1)
        owner = np.where(inside.any(1), np.argmax(inside, axis=1), nearest)
        for j, k in enumerate(on_page):
            for i in np.flatnonzero(owner == j):
                noteheads.append(page_heads[i])
                strip_x.append(starts[k] + page_heads[i].x - systems[k][3])
    return Score(strip, noteheads, np.asarray(strip_x, np.float32), np.asarray(starts, np.int64), len(pages),
                 unrolled_from)


def _detected_systems(pages):
    """(systems per page, strip, [(page, top, bottom, left)], starts) from `keras_asr.sheet.unroll`, or None
    where it finds no system or had to deskew or turn a page (the noteheads' page coordinates would not hold)."""
    floats = [page.astype(np.float32) / 255.0 for page in pages]
    try:
        score = sheet.unroll(floats)
    except sheet.NoStaffSystemsError:
        return None
    if any(unrolled is not page for unrolled, page in zip(score.pages, floats)):
        return None
    strip = np.round(score.strip * 255.0).clip(0, 255).astype(np.uint8)
    systems = [(int(p), s.top, s.bottom, s.left) for p, s in zip(score.system_pages, score.systems)]
    return score.systems_per_page, strip, systems, score.system_starts


def _engraved_systems(pages, boxes):
    """(strip, [(page, top, bottom, left)], starts) cut from the engraving's system boxes, as `sheet.unroll`
    cuts detected ones: 200 rows centred on the system, its columns, padded white."""
    strips, systems, starts, offset = [], [], [], 0
    for page, (image, page_boxes) in enumerate(zip(pages, boxes)):
        tops, bottoms = page_boxes[:, :, 0].min(1), page_boxes[:, :, 0].max(1)
        lefts = np.floor(page_boxes[:, :, 1].min(1)).astype(int)
        rights = np.ceil(page_boxes[:, :, 1].max(1)).astype(int)
        for s in np.argsort(tops):
            strips.append(sheet.system_strip(image, (tops[s] + bottoms[s]) / 2, lefts[s], rights[s]))
            systems.append((page, float(tops[s]), float(bottoms[s]), int(lefts[s])))
            starts.append(offset)
            offset += rights[s] - lefts[s]
    return np.concatenate(strips, axis=1), systems, starts


def _load_npy(path):
    with open(path, "rb") as f:  # a file object, not a path: works under TFDS's test file-system checks
        return np.load(f)


def parse_performance_name(name):
    """`<piece>_tempo-1000_ElectricPiano` -> (1.0, "ElectricPiano")."""
    match = _PERFORMANCE_RE.search(name)
    if not match:
        raise LayoutError(f"Performance folder '{name}' is not named <piece>_tempo-<ratio*1000>_<soundfont>.")
    return int(match.group(1)) / 1000, match.group(2)


def performance_names(piece_dir):
    """The performance folder names of a piece, sorted."""
    perf_root = os.path.join(piece_dir, "performances")
    if not os.path.isdir(perf_root):
        raise LayoutError(f"No performances folder in {piece_dir}.")
    return sorted(d for d in os.listdir(perf_root) if os.path.isdir(os.path.join(perf_root, d)))


def _find(folder, patterns):
    for pattern in patterns:
        found = sorted(glob.glob(os.path.join(folder, pattern)))
        if found:
            return found[0]
    return None


def load_spectrogram(perf_dir, soundfont_dir=None):
    """The performance's spectrogram: the stored feature, else computed from its audio or its rendered MIDI.

    Args:
        perf_dir: the performance folder.
        soundfont_dir: where to find `<soundfont>.sf2` / `.sf3` when the MIDI must be rendered.

    Returns:
        float32 (92, N).
    """
    from keras_asr import audio

    spec_file = _find(os.path.join(perf_dir, "features"), ["*_spec.npy"])
    if spec_file:
        return _load_npy(spec_file).astype(np.float32)
    audio_file = _find(perf_dir, ["*.wav", "*.flac", "*.ogg", "*.mp3"])
    if audio_file:
        return audio.spectrogram(audio.load_audio(audio_file))
    midi_file = _find(perf_dir, ["*.midi", "*.mid"])
    if midi_file is None:
        raise LayoutError(f"Performance {perf_dir} has no spectrogram, audio or MIDI.")
    _, soundfont = parse_performance_name(os.path.basename(perf_dir))
    sf_path = soundfont_dir and _find(soundfont_dir, [f"{soundfont}.sf2", f"{soundfont}.sf3"])
    if not sf_path:
        raise LayoutError(
            f"Performance {perf_dir} has no audio and no spectrogram: rendering its MIDI needs the SoundFont "
            f"'{soundfont}.sf2' (or .sf3) in the SoundFont folder (given: {soundfont_dir})."
        )
    return audio.spectrogram(audio.synthesize(midi_file, sf_path))


def alignment(noteheads, strip_x, performance):
    """One (onset frame, strip x) pair per unique onset frame of a performance.

    Where several noteheads share an onset frame (a chord, or notes within one 50 ms frame), the leftmost
    is kept: the first in reading order.

    Returns:
        (onset_frames int32 (k,), notehead_x float32 (k,)), sorted by onset frame.
    """
    key = f"{performance}_onset_frame"
    pairs = sorted((int(n.data[key]), float(x)) for n, x in zip(noteheads, strip_x) if key in n.data)
    frames, x = (np.array(v) for v in zip(*pairs)) if pairs else (np.zeros(0), np.zeros(0))
    first = np.unique(frames, return_index=True)[1]
    return frames[first].astype(np.int32), x[first].astype(np.float32)


def read_piece(piece_dir, soundfont_dir=None, performances=None):
    """Reads a piece folder into one record per performance.

    Args:
        piece_dir: the piece folder `<root>/<piece>`.
        soundfont_dir: folder with the SoundFonts named in performance folders, used only for performances
            that have neither a spectrogram nor audio.
        performances: names of the performances to read (default: all).

    Returns:
        A list of `PerformanceRecord`, in performance-name order. Performances without any aligned notehead
        are left out.
    """
    piece_dir = os.fspath(piece_dir)
    piece = os.path.basename(os.path.normpath(piece_dir))
    score = read_score(piece_dir)
    records = []
    for name in performances or performance_names(piece_dir):
        tempo_ratio, soundfont = parse_performance_name(name)
        onsets, x = alignment(score.noteheads, score.strip_x, name)
        if not len(onsets):
            continue
        spec = load_spectrogram(os.path.join(piece_dir, "performances", name), soundfont_dir)
        records.append(PerformanceRecord(piece, name, tempo_ratio, soundfont, score.strip, spec, onsets, x))
    return records


def find_split_file(root):
    """`<root>/all_split.yaml` (real MSMD) or `<root>/split.yaml` (offline corpus), or None."""
    for name in SPLIT_FILES:
        if os.path.isfile(os.path.join(root, name)):
            return os.path.join(root, name)
    return None


def read_split(path):
    """Reads a split file, or the split file of a corpus root: {"train": [...], "valid": [...], "test": [...]}."""
    import yaml

    if os.path.isdir(path):
        folder, path = path, find_split_file(path)
        if path is None:
            raise LayoutError(f"No split file in {folder}: expected one of {', '.join(SPLIT_FILES)}.")
    with open(path) as f:
        split = yaml.safe_load(f) or {}
    return {k: list(split.get(k) or []) for k in ("train", "valid", "test")}


# ---------------------------------------------------------------------------------------------------------------
# Naming (the writing half, which the offline corpus uses, is `tfds_msmd.layout_writer`)


def performance_name(piece, tempo_ratio, soundfont):
    """`<piece>_tempo-<int(round(ratio*1000))>_<soundfont>`, e.g. `bach__bwv269__chorale_tempo-950_FluidR3_GM`."""
    return f"{piece}_tempo-{int(round(tempo_ratio * 1000))}_{soundfont}"
