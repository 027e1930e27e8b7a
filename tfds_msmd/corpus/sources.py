"""Score sources of the offline corpus: which music21 corpus works, their grand-staff reduction, the split.

MSMD is piano music on a grand staff. The music21 corpus ships eleven solo keyboard pieces; its larger
collections (Bach chorales, string quartets, Monteverdi madrigals, Palestrina masses) are ensemble scores,
reduced here to two staves: the upper half of the parts, one voice each, on a treble staff and the lower
half on a bass staff. Every source part becomes its own music21 voice, numbered from 1 on each staff
(voices numbered from 0 garble verovio's layout).

Pieces are split by a hash of their name, so a piece keeps its split when collections are added or removed.
"""

import copy
import dataclasses
import hashlib
import os
import re

# Solo keyboard works in the music21 corpus (checked by instrument and part count).
KEYBOARD = (
    "mozart/k545/movement1_exposition.mxl",
    "joplin/maple_leaf_rag.mxl",
    "schumann_clara/polonaise_op1n1.mxl",
    "schumann_clara/polonaise_op1n2.mxl",
    "schumann_clara/polonaise_op1n3.mxl",
    "schumann_clara/polonaise_op1n4.mxl",
    "chopin/mazurka06-2.krn",
    "schoenberg/opus19/movement2.mxl",
    "schoenberg/opus19/movement6.mxl",
    "cpebach/h186.mxl",
    "bach/bwv846.mxl",  # the C major prelude of the Well-Tempered Clavier, among the chorales' bwv files
)
# Piano parts (two PartStaffs) of accompanied works: real piano writing without the voice or solo instrument.
PIANO_PARTS = (
    ("beach/prayer_of_a_tired_child.musicxml", (4, 5)),
    ("schubert/Lindenbaum.xml", (1, 2)),
    ("schumann_robert/dichterliebe_no2.xml", (1, 2)),
    ("liliuokalani/aloha_oe.mxl", (5, 6)),
    ("schumann_clara/opus17/movement3.xml", (2, 3)),
    ("handel/rinaldo/Lascia_chio_pianga.mxl", (1, 2)),
    ("weber/concertino_clarinet.mxl", (1, 2)),
)
# Tune collections that get generated piano accompaniments (`textures`), and how many tunes each gives.
TUNE_COLLECTIONS = ("ryansMammoth", "essenFolksong", "oneills1850")
QUARTET_COMPOSERS = ("beethoven", "haydn", "mozart", "schumann_robert")
# Short chorales that make the small config (and the test fixtures) fast.
# Their hash splits: bwv365 valid, bwv269 test, the others train.
SMALL_PIECES = (
    "bach/bwv153.1.mxl",
    "bach/bwv347.mxl",
    "bach/bwv38.6.mxl",
    "bach/bwv40.6.mxl",
    "schoenberg/opus19/movement2.mxl",
    "bach/bwv365.mxl",
    "bach/bwv269.mxl",
)
# Split by hash of the piece name: about 76 / 4 / 20 % as MSMD's 354 / 19 / 94.
SPLIT_BUCKETS = (("test", 20), ("valid", 24), ("train", 100))


@dataclasses.dataclass(frozen=True)
class Source:
    """One corpus piece.

    Attributes:
        piece: MSMD-style piece name `composer__opus__file`.
        path: the music21 corpus path (relative, e.g. "bach/bwv269.mxl") or an absolute file path.
        max_measures: keep only the first `max_measures` measures (0: all); for short test excerpts.
        parts: indices of the parts to keep (empty: all), e.g. the piano staves of a song.
        number: the tune's number (ABC `X:`) in a file of several tunes (0: the file is one piece).
        texture: a `textures.TEXTURES` name: the piece is the source's melody (or a chorale's upper voices)
            over a generated left hand in that texture.
        work: the piece name of the work a generated piece is made from; it keeps that work's split, so
            a chorale and its figurations never fall into different splits.
        collection: the collection the piece belongs to (for `stats`).
    """

    piece: str
    path: str
    max_measures: int = 0
    parts: tuple = ()
    number: int = 0
    texture: str = ""
    work: str = ""
    collection: str = ""


def piece_name(path, kind):
    """MSMD-style name `composer__opus__file` of a corpus path (dots become dashes: names end file names).

    Files directly under the composer folder take the collection `kind` as their last field, e.g.
    "bach/bwv269.mxl" -> "bach__bwv269__chorale"; deeper paths keep theirs:
    "beethoven/opus18no1/movement1.mxl" -> "beethoven__opus18no1__movement1".
    """
    parts = path.rsplit(".", 1)[0].split("/")
    fields = parts if len(parts) >= 3 else parts + [kind]
    fields = [fields[0], "-".join(fields[1:-1]), fields[-1]]
    return "__".join(f.replace(".", "-").replace(" ", "_") for f in fields)


def split_of(piece):
    """The fixed split ("train", "valid" or "test") of a piece, from an MD5 hash of its name."""
    bucket = int(hashlib.md5(piece.encode()).hexdigest(), 16) % 100
    return next(name for name, end in SPLIT_BUCKETS if bucket < end)


def _corpus_paths(composer, suffix=".mxl"):
    from music21 import corpus

    paths = []
    for p in corpus.getComposer(composer):
        rel = str(p).split("/corpus/", 1)[1]
        if rel.endswith(suffix):
            paths.append(rel)
    return sorted(paths)


def collection(name, limit=0):
    """The sources of one collection.

    Args:
        name: "keyboard", "piano_parts", "chorales", "quartets", "madrigals", "palestrina", a tune collection
            of `TUNE_COLLECTIONS` (each tune over a generated accompaniment), or "chorale_figurations"
            (chorales other than those a limited "chorales" picks, set as keyboard figurations).
        limit: how many pieces, spread evenly over the collection (0: all).
    """
    found = _collection(name, limit)
    found = found if name == "chorale_figurations" else _spread(found, limit)
    return [s if s.collection else dataclasses.replace(s, collection=name) for s in found]


def _collection(name, limit):
    if name == "keyboard":
        return [Source(piece_name(p, "piano"), p, collection=name) for p in KEYBOARD]
    if name == "piano_parts":
        return [Source(piece_name(p, "piano"), p, parts=parts, collection=name) for p, parts in PIANO_PARTS]
    if name == "chorales":
        return [Source(piece_name(p, "chorale"), p, collection=name) for p in _chorale_paths()]
    if name == "chorale_figurations":
        picked = _spread(_chorale_paths(), limit, offset=0.5)
        return [Source(piece_name(p, _texture_of(p)), p, texture=_texture_of(p), work=piece_name(p, "chorale"),
                       collection=name) for p in picked]
    if name in TUNE_COLLECTIONS:
        out = []
        for path, number in _tunes(name):
            stem = path.rsplit(".", 1)[0].split("/")[-1] + (f"-{number}" if number else "")
            texture = _texture_of(f"{path}#{number}")
            out.append(Source("__".join((name, stem.replace(".", "-").replace(" ", "_"), texture)), path,
                              number=number, texture=texture, collection=name))
        return out
    if name not in ("quartets", "madrigals", "palestrina"):
        raise ValueError(f"Unknown collection {name!r}.")
    if name == "quartets":
        paths = [p for c in QUARTET_COMPOSERS for p in _corpus_paths(c) if p not in KEYBOARD]
        # Quartets only: Schumann's op. 41 (not the songs), Mozart's K. 80-458 (not the sonata).
        paths = [p for p in paths if not p.startswith("schumann_robert/") or "opus41" in p]
        return [Source(piece_name(p, "quartet"), p) for p in paths]
    if name == "madrigals":
        paths = [p for p in _corpus_paths("monteverdi") if not p.endswith("_old.mxl")]
        return [Source(piece_name(p, "madrigal"), p) for p in paths]
    if name == "palestrina":
        paths = _corpus_paths("palestrina", ".krn")
        return [Source(piece_name(p, "mass"), p) for p in paths]


def _chorale_paths():
    return [p for p in _corpus_paths("bach") if p.startswith("bach/bwv") and p not in KEYBOARD]


def _texture_of(key):
    """A fixed texture per work, from a hash of its path (so every texture gets about a quarter)."""
    from tfds_msmd.corpus import textures

    return textures.TEXTURES[int(hashlib.md5(key.encode()).hexdigest(), 16) % len(textures.TEXTURES)]


def _spread(items, limit, offset=0.0):
    """`limit` items spread evenly over `items` (all of them when limit is 0 or too large).

    With offset 0.5 the picks fall halfway between those of offset 0, so the two selections are disjoint.
    """
    if not limit or limit >= len(items):
        return list(items)
    return [items[int((i + offset) * len(items) / limit)] for i in range(limit)]


def _tunes(name):
    """(corpus path, tune number) of every tune in a tune collection; number 0 for one-tune files."""
    import music21

    paths = _corpus_paths(name, ".abc")
    root = os.path.join(os.path.dirname(music21.__file__), "corpus")
    tunes = []
    for path in paths:
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            numbers = [int(m) for m in re.findall(r"^X:\s*(\d+)", f.read(), re.M)]
        if len(numbers) <= 1:
            tunes.append((path, 0))
        else:
            tunes += [(path, n) for n in sorted(set(numbers))]
    return tunes


def load_score(source):
    """Parses a source with music21 and returns its grand-staff reduction (a music21 Score)."""
    from music21 import converter, corpus, stream

    from tfds_msmd.corpus import textures

    path = source.path
    if path.startswith("/"):
        score = converter.parse(path)
    else:
        score = corpus.parse(path, number=source.number) if source.number else corpus.parse(path)
    if source.parts:
        picked = stream.Score()
        for i in source.parts:
            picked.insert(0, score.parts[i])
        score = picked
    if source.texture:
        many = len([p for p in score.parts if p.getElementsByClass(stream.Measure)]) >= 3
        score = (textures.figurate_chorale if many else textures.accompany)(score, source.texture)
    return grand_staff(score, source.max_measures)


def grand_staff(score, max_measures=0):
    """Reduces a music21 score to two staves (treble and bass) joined by a brace.

    A staff made of a single source part (a keyboard staff) keeps that part's clefs; a staff that merges
    several parts gets a treble (upper) or bass (lower) clef. Lyrics, chord symbols, grace notes, repeats,
    slurs, dynamics and text are dropped: the engraving shows notes and rests, which the audio renders.

    Args:
        score: a music21 Score with one or more parts.
        max_measures: keep only this many measures (0: all).

    Returns:
        A new music21 Score of two PartStaffs in a brace StaffGroup.
    """
    from music21 import clef, key, layout, meter, stream, tempo

    parts = [p for p in score.parts if p.getElementsByClass(stream.Measure)]
    if not parts:
        raise ValueError("Score has no measures.")
    if len(parts) == 1:
        raise ValueError("Score has a single part; a grand staff needs two.")
    half = (len(parts) + 1) // 2
    groups = [parts[:half], parts[half:]]
    n_measures = min(len(p.getElementsByClass(stream.Measure)) for p in parts)
    if max_measures:
        n_measures = min(n_measures, max_measures)
    out = stream.Score()
    staves = []
    for staff_idx, group in enumerate(groups):
        staff = stream.PartStaff(id=f"P{staff_idx + 1}")
        measures = [list(p.getElementsByClass(stream.Measure))[:n_measures] for p in group]
        for i in range(n_measures):
            first = measures[0][i]
            m = stream.Measure(number=first.number)
            m.paddingLeft = first.paddingLeft
            if len(group) == 1:
                for c in first.getElementsByClass(clef.Clef):
                    m.insert(c.offset, copy.deepcopy(c))
            elif i == 0:
                m.insert(0, clef.TrebleClef() if staff_idx == 0 else clef.BassClef())
            for ks in first.getElementsByClass(key.KeySignature):
                m.insert(ks.offset, key.KeySignature(ks.sharps))
            for ts in first.getElementsByClass(meter.TimeSignature):
                m.insert(ts.offset, meter.TimeSignature(ts.ratioString))
            if staff_idx == 0:
                for mm in parts[0].getElementsByClass(stream.Measure)[i].getElementsByClass(tempo.MetronomeMark):
                    if mm.number:  # Textual marks without a number would make verovio guess a tempo.
                        m.insert(mm.offset, tempo.MetronomeMark(number=mm.number, referent=mm.referent))
            voices = [v for part_measures in measures for v in _voices(part_measures[i])]
            for v_idx, elements in enumerate(voices):
                voice = stream.Voice(id=str(v_idx + 1))
                for offset, element in elements:
                    voice.insert(offset, element)
                m.insert(0, voice)
            staff.append(m)
        staves.append(staff)
        out.insert(0, staff)
    out.insert(0, layout.StaffGroup(staves, symbol="brace"))
    return out


def _voices(measure):
    """The voices of a source measure as lists of (offset, cleaned copy of note/chord/rest)."""
    from music21 import harmony, note

    containers = list(measure.voices) or [measure]
    voices = []
    first = None
    for container in containers:
        elements = []
        for e in container.getElementsByClass(note.GeneralNote):
            # Inexpressible durations (a few source rests) cannot be written to MusicXML.
            if isinstance(e, (harmony.Harmony, note.Unpitched)) or e.duration.isGrace \
                    or e.duration.type == "inexpressible":
                continue
            e2 = copy.deepcopy(e)
            e2.lyrics = []
            e2.expressions = []
            elements.append((e.getOffsetBySite(container), e2))
        first = elements if first is None else first
        if any(not isinstance(e, note.Rest) for _, e in elements):
            voices.append(elements)
    # Rest-only voices are dropped (fewer stray rests), but a silent measure keeps one to fill its time.
    return voices or [first]
