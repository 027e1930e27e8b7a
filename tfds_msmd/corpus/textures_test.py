import pytest
from music21 import corpus, stream

from tfds_msmd.corpus import textures

pytestmark = pytest.mark.single_backend


@pytest.fixture(scope="module")
def tune():
    return corpus.parse("ryansMammoth/AcaciaReel.abc")


def _left_hand(score):
    return [e for m in score.parts[-1].getElementsByClass(stream.Measure) for e in m.notesAndRests]


@pytest.mark.parametrize("texture", textures.TEXTURES)
def test_accompaniment_fills_every_measure_below_the_tune(tune, texture):
    score = textures.accompany(tune, texture)
    melody, lh = score.parts[0], score.parts[1]
    m_measures, l_measures = (list(p.getElementsByClass(stream.Measure)) for p in (melody, lh))
    assert len(m_measures) == len(l_measures)
    for m, l in zip(m_measures, l_measures):
        assert abs(l.highestTime - m.highestTime) < 1e-6  # the left hand lasts exactly as long as the bar
    pitches = [p.midi for e in _left_hand(score) if not e.isRest for p in e.pitches]
    assert pitches and max(pitches) <= textures.CHORD_RANGE[1] and min(pitches) >= textures.BASS_RANGE[0]


def test_textures_differ_in_rhythm_and_density(tune):
    onsets = {t: len([e for e in _left_hand(textures.accompany(tune, t)) if not e.isRest]) for t in textures.TEXTURES}
    chords = {t: sum(len(e.pitches) > 1 for e in _left_hand(textures.accompany(tune, t))) for t in textures.TEXTURES}
    assert onsets["alberti"] > onsets["block"] and onsets["arpeggio"] > onsets["block"]
    assert chords["alberti"] == chords["arpeggio"] == 0 and chords["block"] > chords["waltz"] > 0


def test_harmonies_fit_the_melody(tune):
    # The chosen triad holds most of each segment's melody notes (by duration).
    # The chosen triads hold more of the melody (by duration) than the tonic triad throughout would.
    segments = textures.harmonize(tune.parts[0])
    measures = list(tune.parts[0].getElementsByClass(stream.Measure))
    tonic = {p.pitchClass for p in segments[-1][4]}
    inside = with_tonic = total = 0.0
    for i, start, length, _, pitches in segments:
        pcs = {p.pitchClass for p in pitches}
        for n in measures[i].recurse().notes:
            if start <= n.offset < start + length:
                total += n.quarterLength
                inside += n.quarterLength * (n.pitches[0].pitchClass in pcs)
                with_tonic += n.quarterLength * (n.pitches[0].pitchClass in tonic)
    assert inside / total > 0.5 and inside > with_tonic


def test_chorale_figuration_keeps_the_upper_voices_and_its_harmony():
    chorale = corpus.parse("bach/bwv269")
    score = textures.figurate_chorale(chorale, "alberti")
    assert len(score.parts) == 3
    soprano = [n.pitch.midi for n in chorale.parts[0].recurse().notes]
    assert [n.pitch.midi for n in score.parts[0].recurse().notes] == soprano
    assert len(_left_hand(score)) > len(list(chorale.parts[3].recurse().notes))  # running notes


def test_unknown_texture_is_rejected(tune):
    with pytest.raises(ValueError, match="alberti"):
        textures.accompany(tune, "stride")
