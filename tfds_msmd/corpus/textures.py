"""Piano textures generated from the corpus' melodies and harmonies.

Real piano music is mostly melody over an accompaniment figure. The music21 corpus has thousands of tunes
(ryansMammoth, essenFolksong, oneills1850) and hundreds of four-part chorales, but few piano pieces. Here a
tune gets a left hand in one of four textures over harmonies chosen to fit it, and a chorale keeps its
soprano and alto in the right hand while its harmonies, beat by beat, become a left-hand figure:

- "block": the chord on every beat;
- "alberti": broken chord low-high-middle-high in eighths;
- "waltz": bass on the first beat, the chord on the others ("oom-pah" in duple meters);
- "arpeggio": rising and falling broken chords from the bass in eighths.

The result is a music21 Score of melody part(s) plus a left-hand part, which `sources.grand_staff` reduces to
two staves like any other source.

    from music21 import corpus
    score = accompany(corpus.parse("ryansMammoth/AcaciaReel.abc"), "alberti")
"""

import copy

TEXTURES = ("block", "alberti", "waltz", "arpeggio")
BASS_RANGE = (36, 50)  # C2-D3: the left hand's lowest note
CHORD_RANGE = (48, 62)  # C3-D4: its chord tones, below most melodies
_MAJOR = ("I", "V", "IV", "vi", "ii")  # candidate harmonies, in order of preference
_MINOR = ("i", "V", "iv", "VI", "III")


def accompany(score, texture):
    """A tune (its first part) with a generated left hand in `texture`; returns a two-part Score."""
    from music21 import stream

    melody = _first_part(score)
    segments = harmonize(melody)
    out = stream.Score()
    out.insert(0, copy.deepcopy(melody))
    out.insert(0, _left_hand(melody, segments, texture))
    return out


def figurate_chorale(score, texture):
    """A chorale's soprano and alto in the right hand over its harmonies as a left-hand figure (3 parts)."""
    from music21 import stream

    parts = [p for p in score.parts if p.getElementsByClass(stream.Measure)]
    if len(parts) < 3:
        raise ValueError("A chorale figuration needs at least three parts.")
    chords = score.chordify()
    segments = []
    for i, m in enumerate(parts[0].getElementsByClass(stream.Measure)):
        beat = _beat_length(m)
        for start in _steps(m.highestTime, beat):
            sounding = chords.flatten().getElementAtOrBefore(m.getOffsetInHierarchy(parts[0]) + start,
                                                              classList=["Chord"])
            if sounding is None or not sounding.pitches:
                continue
            pitches = sorted(sounding.pitches, key=lambda p: p.ps)
            segments.append((i, start, min(beat, m.highestTime - start), pitches[0], pitches[1:] or pitches))
    out = stream.Score()
    for p in parts[:2]:
        out.insert(0, copy.deepcopy(p))
    out.insert(0, _left_hand(parts[0], segments, texture))
    return out


def harmonize(melody):
    """Harmonies for a melody: per measure (or half measure in long meters) the triad that fits it best.

    A candidate triad scores the duration of the segment's melody notes among its pitch classes, plus half
    a point when the note on the segment's downbeat is a chord tone; ties go to the earlier of I, V, IV, vi,
    ii (minor: i, V, iv, VI, III). The last segment is the tonic.

    Returns:
        A list of (measure index, offset in the measure, length, bass pitch, chord pitches) in quarters.
    """
    from music21 import roman, stream

    key = melody.analyze("key")
    figures = _MAJOR if key.mode == "major" else _MINOR
    candidates = [roman.RomanNumeral(f, key) for f in figures]
    measures = list(melody.getElementsByClass(stream.Measure))
    segments = []
    for i, m in enumerate(measures):
        length = m.highestTime
        halves = 2 if length >= 4 and length % 2 == 0 else 1
        for start in _steps(length, length / halves):
            end = start + length / halves
            notes = [(n, max(0.0, min(end, n.offset + n.quarterLength) - max(start, n.offset)))
                     for n in m.recurse().notes if n.offset < end and n.offset + n.quarterLength > start]

            def score(rn):
                pcs = {p.pitchClass for p in rn.pitches}
                s = sum(w for n, w in notes if any(p.pitchClass in pcs for p in n.pitches))
                first = [n for n, _ in notes if n.offset <= start]
                return s + (0.5 if first and first[-1].pitches[0].pitchClass in pcs else 0.0)

            best = max(candidates, key=lambda rn: (score(rn), -candidates.index(rn)))
            segments.append([i, start, end - start, best])
    if segments:
        segments[-1][3] = candidates[0]
    return [(i, s, n, rn.root(), list(rn.pitches)) for i, s, n, rn in segments]


def _left_hand(melody, segments, texture):
    """The left-hand Part: per segment the texture's notes, measure by measure as the melody's."""
    from music21 import chord, clef, key, meter, note, stream

    if texture not in TEXTURES:
        raise ValueError(f"Unknown texture {texture!r}; choose from {TEXTURES}.")
    part = stream.Part(id="LH")
    by_measure = {}
    for seg in segments:
        by_measure.setdefault(seg[0], []).append(seg)
    for i, m in enumerate(melody.getElementsByClass(stream.Measure)):
        lh = stream.Measure(number=m.number)
        if i == 0:
            lh.insert(0, clef.BassClef())
        for ks in m.getElementsByClass(key.KeySignature):
            lh.insert(ks.offset, key.KeySignature(ks.sharps))
        for ts in m.getElementsByClass(meter.TimeSignature):
            lh.insert(ts.offset, meter.TimeSignature(ts.ratioString))
        filled = 0.0
        for _, start, length, bass, pitches in by_measure.get(i, []):
            if start > filled:
                lh.insert(filled, note.Rest(quarterLength=start - filled))
            low = _in_range(bass, *BASS_RANGE)
            upper = sorted({_in_range(p, *CHORD_RANGE).nameWithOctave: _in_range(p, *CHORD_RANGE)
                            for p in pitches}.values(), key=lambda p: p.ps)
            for offset, dur, chosen in _figure(texture, low, upper, length, _beat_length(m)):
                element = chord.Chord(chosen) if len(chosen) > 1 else note.Note(chosen[0])
                element.quarterLength = dur
                lh.insert(start + offset, element)
            filled = start + length
        if filled < m.highestTime:
            lh.insert(filled, note.Rest(quarterLength=m.highestTime - filled))
        part.append(lh)
    return part


def _figure(texture, bass, upper, length, beat):
    """(offset, duration, pitches) of one segment's figure."""
    if texture == "block":
        return [(t, d, [bass] + upper) for t, d in _grid(length, beat)]
    if texture == "waltz":
        return [(t, d, [bass] if k == 0 else upper) for k, (t, d) in enumerate(_grid(length, beat))]
    cycle = ([upper[0], upper[-1], upper[len(upper) // 2], upper[-1]] if texture == "alberti"
             else [bass] + upper + upper[-2:0:-1])
    return [(t, d, [cycle[k % len(cycle)]]) for k, (t, d) in enumerate(_grid(length, 0.5))]


def _grid(length, step):
    """(offset, duration) of steps of `step` quarters filling `length` (the last one may be shorter)."""
    return [(t, min(step, length - t)) for t in _steps(length, step)]


def _steps(length, step):
    out, t = [], 0.0
    while t < length - 1e-9:
        out.append(t)
        t += step
    return out


def _beat_length(measure):
    from music21 import meter

    ts = measure.getContextByClass(meter.TimeSignature)
    return float(ts.beatDuration.quarterLength) if ts is not None else 1.0


def _in_range(pitch, low, high):
    """A copy of `pitch` moved by octaves into [low, high] (MIDI), keeping its spelling."""
    p = copy.deepcopy(pitch)
    while p.ps < low:
        p.octave += 1
    while p.ps > high:
        p.octave -= 1
    return p


def _first_part(score):
    from music21 import stream

    parts = [p for p in score.parts if p.getElementsByClass(stream.Measure)] if hasattr(score, "parts") else []
    if not parts:
        raise ValueError("The tune has no measures.")
    return parts[0]
