import numpy as np
import pytest

from tfds_msmd.corpus import engrave, synth

pytestmark = pytest.mark.single_backend


def _heads():
    # An ascending C major arpeggio, quarter notes at 120 bpm, then a two-note chord.
    onsets = [0.0, 0.5, 1.0, 1.5, 1.5]
    return [engrave.Notehead(0, 0, 0, 0, 0, 7, 9, p, t, 0.5) for p, t in zip([60, 64, 67, 72, 48], onsets)]


def test_note_events_scale_with_tempo_ratio():
    events = synth.note_events(_heads(), ratio=2.0)
    assert events.shape == (5, 5) and events.dtype == np.float32
    np.testing.assert_allclose(events[:, 0], [0, 0.25, 0.5, 0.75, 0.75])
    np.testing.assert_allclose(events[:, 2], 0.25)


def test_midi_file_reads_back_with_the_same_notes(tmp_path):
    from music21 import midi

    events = synth.note_events(_heads(), ratio=0.9)
    path = tmp_path / "x.midi"
    synth.write_midi(events, path)
    mf = midi.MidiFile()
    mf.open(str(path))
    mf.read()
    mf.close()
    tick, starts = 0, []
    for e in mf.tracks[0].events:
        if e.isDeltaTime():
            tick += e.time
        elif e.isNoteOn() and e.velocity > 0:
            starts.append((tick / 960, e.pitch))  # 480 ticks per beat at 120 bpm
    expected = [(float(t), int(p)) for t, p in events[:, :2]]
    assert [p for _, p in sorted(starts)] == [p for _, p in sorted(expected)]
    np.testing.assert_allclose(sorted(t for t, _ in starts), sorted(t for t, _ in expected), atol=1e-3)


def test_render_writes_mono_22050_audio_that_sounds_at_the_notes(tmp_path):
    import soundfile

    from keras_asr import audio

    events = synth.note_events(_heads())
    synth.write_midi(events, tmp_path / "x.midi")
    synth.render(tmp_path / "x.midi", "TimGM6mb", tmp_path / "x.wav")
    signal, sr = soundfile.read(tmp_path / "x.wav")
    assert sr == 22050 and signal.ndim == 1 and 2.0 < len(signal) / sr < 8.0  # notes end at 2 s, then the release tail
    spec = audio.spectrogram(signal.astype(np.float32))
    for onset, pitch in events[1:4, :2]:  # notes after the first: frame f - 3 precedes them
        f, band = int(np.ceil(onset * 20)), audio.pitch_to_bin(int(pitch))
        assert spec[band, f] > spec[band, f - 3] + 0.05


def test_missing_soundfont_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="NoSuchFont"):
        synth.soundfont_path("NoSuchFont")
