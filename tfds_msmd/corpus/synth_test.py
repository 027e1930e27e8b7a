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


def test_parse_sound():
    assert synth.parse_sound("FluidR3_GM") == ("FluidR3_GM", 0, "dry")
    assert synth.parse_sound("MuseScore_General-p2-room") == ("MuseScore_General", 2, "room")


def _two_staves():
    import dataclasses

    return [dataclasses.replace(h, staff=int(h.pitch < 60)) for h in _heads()]


def test_dry_performance_is_the_score_and_expressive_ones_vary_but_keep_the_notes():
    heads = _two_staves()
    events, onsets, velocity, pedal = synth.perform(heads, 1.0, "dry")
    np.testing.assert_array_equal(events, synth.note_events(heads))
    assert set(velocity) == {80} and pedal == []
    events, onsets, velocity, pedal = synth.perform(heads * 8, 1.0, "expr", seed=3)
    again = synth.perform(heads * 8, 1.0, "expr", seed=3)
    np.testing.assert_array_equal(onsets, again[1])
    score = np.array([h.onset for h in heads * 8])
    assert 0 < np.abs(onsets - score).max() < 0.3 and len(set(velocity)) > 5
    np.testing.assert_allclose(events[:, 0], onsets, atol=1e-6)  # the MIDI's onsets are the written ones
    assert np.array_equal(events[:, 1], [h.pitch for h in heads * 8]) and pedal


def test_room_adds_a_tail_but_keeps_the_onset():
    signal = np.zeros(22050, np.float32)
    signal[1000:1100] = np.hanning(100)
    wet = synth.room(signal, seed=1)
    assert np.argmax(np.abs(wet) > 0.05) in range(1000, 1100)  # direct sound first
    assert np.abs(wet[3000:8000]).max() > 1e-3 > np.abs(signal[3000:8000]).max()  # reverberant tail


def test_program_and_velocity_reach_the_midi_file(tmp_path):
    from music21 import midi

    events, _, velocity, pedal = synth.perform(_two_staves(), 1.0, "expr", seed=1)
    synth.write_midi(events, tmp_path / "x.midi", velocity, pedal, program=2)
    mf = midi.MidiFile()
    mf.open(str(tmp_path / "x.midi"))
    mf.read()
    mf.close()
    programs = [e.data for e in mf.tracks[0].events if e.type == midi.ChannelVoiceMessages.PROGRAM_CHANGE]
    velocities = [e.velocity for e in mf.tracks[0].events if e.isNoteOn() and e.velocity > 0]
    pedals = [e for e in mf.tracks[0].events if e.type == midi.ChannelVoiceMessages.CONTROLLER_CHANGE]
    assert programs == [2] and sorted(velocities) == sorted(velocity.tolist()) and pedals


@pytest.mark.parametrize("soundfont", ["FluidR3_GM", "TimGM6mb"])
def test_every_piano_program_sounds_in_the_training_soundfonts(tmp_path, soundfont):
    import soundfile

    # A preset the SoundFont lacks renders silence, which would leave noteheads without sound.
    for program in synth.PIANO_PROGRAMS:
        synth.write_midi(synth.note_events(_heads()[:1]), tmp_path / "x.midi", program=program)
        synth.render(tmp_path / "x.midi", soundfont, tmp_path / "x.wav")
        signal, _ = soundfile.read(tmp_path / "x.wav")
        assert np.abs(signal).max() > 0.01, program
