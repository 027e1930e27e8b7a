import dataclasses

import pytest
from music21 import stream

from tfds_msmd.corpus import sources

pytestmark = pytest.mark.single_backend


def test_piece_names_follow_msmd():
    assert sources.piece_name("bach/bwv269.mxl", "chorale") == "bach__bwv269__chorale"
    assert sources.piece_name("bach/bwv153.1.mxl", "chorale") == "bach__bwv153-1__chorale"
    assert sources.piece_name("beethoven/opus18no1/movement1.mxl", "quartet") == "beethoven__opus18no1__movement1"


def test_split_is_fixed_by_piece():
    assert sources.split_of("bach__bwv269__chorale") == "test"
    assert sources.split_of("bach__bwv365__chorale") == "valid"
    assert sources.split_of("bach__bwv347__chorale") == "train"
    names = [f"composer__opus{i}__file" for i in range(2000)]
    fractions = {s: sum(sources.split_of(n) == s for n in names) / len(names) for s in ("train", "valid", "test")}
    assert 0.70 < fractions["train"] < 0.82 and 0.02 < fractions["valid"] < 0.06 and 0.16 < fractions["test"] < 0.24


def test_grand_staff_keeps_every_note_in_two_staves_with_voices_from_one():
    from music21 import corpus

    original = corpus.parse("bach/bwv269")
    reduced = sources.grand_staff(original, max_measures=4)
    assert len(reduced.parts) == 2 and all(isinstance(p, stream.PartStaff) for p in reduced.parts)
    for staff in reduced.parts:
        for m in staff.getElementsByClass(stream.Measure):
            assert [v.id for v in m.voices] == [str(i + 1) for i in range(len(m.voices))]

    def pitches(parts):
        return sorted((float(n.getOffsetInHierarchy(p)), n.pitch.midi) for p in parts
                      for m in list(p.getElementsByClass(stream.Measure))[:4] for n in m.recurse().notes)

    assert pitches(reduced.parts) == pitches(original.parts)
    assert not any(n.lyrics for n in reduced.recurse().notes)


def test_collections_have_the_known_sizes():
    keyboard = sources.collection("keyboard")
    assert len(keyboard) == 11 and "bach__bwv846__piano" in {s.piece for s in keyboard}
    assert "bach/bwv846.mxl" not in {s.path for s in sources.collection("chorales")}  # a prelude, not a chorale
    assert 380 <= len(sources.collection("chorales")) <= 420
    assert 45 <= len(sources.collection("quartets")) <= 55
    assert 45 <= len(sources.collection("madrigals")) <= 55


def test_generated_collections_are_spread_disjoint_and_keep_their_works_split():
    chorales = sources.collection("chorales", 20)
    figurations = sources.collection("chorale_figurations", 20)
    assert len(chorales) == len(figurations) == 20
    assert not {s.path for s in chorales} & {s.path for s in figurations}
    assert all(s.texture and s.work.endswith("__chorale") and s.collection == "chorale_figurations"
               for s in figurations)
    tunes = sources.collection("oneills1850", 8)
    assert len({s.piece for s in tunes}) == 8 and all(s.number > 0 and s.texture for s in tunes)


def test_piano_parts_and_tunes_load_as_grand_staves():
    song = sources.load_score(sources.Source("x", "schubert/Lindenbaum.xml", max_measures=3, parts=(1, 2)))
    assert len(song.parts) == 2 and any(n for n in song.parts[1].recurse().notes)
    tune = sources.collection("ryansMammoth", 3)[1]
    score = sources.load_score(dataclasses.replace(tune, max_measures=4))
    lower = [n for n in score.parts[1].recurse().notes]
    assert len(score.parts) == 2 and lower and max(p.midi for n in lower for p in n.pitches) <= 62
