"""Tests for the MSMD audio front end."""

import shutil

import numpy as np
import pytest
import soundfile

from keras_asr import audio

pytestmark = pytest.mark.single_backend

SR = audio.SAMPLE_RATE
SOUNDFONT = "/usr/share/sounds/sf2/TimGM6mb.sf2"
needs_fluidsynth = pytest.mark.skipif(
    shutil.which("fluidsynth") is None or not __import__("os").path.isfile(SOUNDFONT),
    reason="needs fluidsynth and the TimGM6mb SoundFont (scripts/install.sh)",
)

# Peak FFT bin of each of the 92 bands of madmom's LogarithmicFilterbank(num_bands=16, fmin=30, fmax=6000,
# unique_filters=True) at 22050 Hz / 2048, taken from madmom 0.16.1.
MADMOM_CENTRE_BINS = [
    4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 32, 33,
    34, 36, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 58, 60, 63, 66, 69, 72, 75, 78, 82, 85, 89, 93, 97, 102,
    106, 111, 116, 121, 126, 132, 137, 144, 150, 157, 163, 171, 178, 186, 194, 203, 212, 221, 231, 241, 252,
    263, 275, 287, 300, 313, 327, 341, 357, 372, 389, 406, 424, 443, 462, 483, 504, 527,
]


def write_midi(path, notes, tempo_us=500_000, division=480):
    """Writes a one-track standard MIDI file; `notes` are (start_beat, duration_beats, pitch, velocity)."""
    import mido

    events = []
    for start, dur, pitch, vel in notes:
        events.append((round(start * division), 1, mido.Message("note_on", note=pitch, velocity=vel)))
        events.append((round((start + dur) * division), 0, mido.Message("note_off", note=pitch, velocity=0)))
    events.sort(key=lambda e: e[:2])  # note-offs before note-ons at equal ticks
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo_us), mido.Message("program_change")])
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    mido.MidiFile(type=0, ticks_per_beat=division, tracks=[track]).save(path)


def test_filterbank_matches_madmom():
    fb = audio.filterbank()
    assert fb.shape == (1024, 92) and audio.NUM_BINS == 92
    np.testing.assert_array_equal(np.argmax(fb, axis=0), MADMOM_CENTRE_BINS)
    np.testing.assert_allclose(fb.sum(axis=0), 1.0, rtol=1e-6)  # area-normalised
    centres = audio.band_frequencies()
    np.testing.assert_allclose(centres, np.array(MADMOM_CENTRE_BINS) * SR / 2048)
    np.testing.assert_allclose(centres[[0, 32, 91]], [43.066406, 441.430664, 5673.999023], atol=1e-5)


def test_spectrogram_matches_madmom_values():
    # Reference values: madmom 0.16.1, FramedSignal(origin="future", fps=20), LogarithmicFilteredSpectrogram.
    t = np.arange(5000) / SR
    x = (0.5 * np.sin(2 * np.pi * 440 * t) + 0.25 * np.sin(2 * np.pi * 97.3 * t)).astype(np.float32)
    spec = audio.spectrogram(x)
    assert spec.shape == (92, 5) and spec.dtype == np.float32
    expected = [
        [0.0363654, 0.0364075, 0.0359938, 0.6227958, 0.8425837],
        [0.0055437, 0.0056555, 0.0051175, 0.4100989, 0.616434],
        [1.6373242, 1.6373245, 1.6373236, 1.6863718, 1.4406033],
        [2.2824395, 2.2824392, 2.2824392, 2.2796159, 1.5294213],
        [1.465412, 1.4654117, 1.4654133, 1.5420594, 1.4188052],
        [0.0000113, 0.000011, 0.0000128, 0.1103356, 0.2222114],
    ]
    np.testing.assert_allclose(spec[[9, 13, 31, 32, 33, 60]], expected, atol=2e-6)


def test_frame_count_and_timing():
    assert audio.num_frames(SR) == 20 and audio.num_frames(SR + 1) == 21
    assert audio.spectrogram(np.zeros(3 * SR, np.float32)).shape == (92, 60)
    # A tone switched on at t: the onset frame ceil(20 t) is the first frame whose window lies entirely after
    # the onset (madmom origin="future"), so the tone is at full level there, partly in the frame before
    # and absent two frames before.
    t = 1.234
    assert audio.onset_frame(t) == 25
    n = np.arange(3 * SR)
    tone = np.where(n >= round(t * SR), 0.5 * np.sin(2 * np.pi * 441.43 * n / SR), 0).astype(np.float32)
    level = 10 ** audio.spectrogram(tone)[audio.pitch_to_bin(69)] - 1  # linear magnitude
    o = audio.onset_frame(t)
    np.testing.assert_allclose(level[o : o + 10], level[40], rtol=1e-3)
    assert 0 < level[o - 1] < 0.9 * level[o]
    assert level[o - 3] == 0
    # A click is seen by the frames whose window covers it, loudest where it sits nearest the window centre:
    # on a frame boundary t = k / 20 that is frame k - 1, one before the onset frame.
    for k in (20, 33):
        click = np.zeros(3 * SR, np.float32)
        click[round(k * audio.HOP_SIZE)] = 1.0
        energy = audio.spectrogram(click).sum(axis=0)
        assert energy.argmax() == k - 1 == audio.onset_frame(k / 20) - 1
        assert set(np.nonzero(energy)[0]) <= {k - 2, k - 1}


def test_pitch_to_bin():
    assert audio.pitch_to_bin(69) == 32  # A4 = 440 Hz -> the 441.4 Hz band
    np.testing.assert_array_equal(audio.pitch_to_bin([48, 60, 72]), [8, 20, 36])
    with pytest.raises(ValueError):
        audio.pitch_to_bin(21)  # 27.5 Hz, below the lowest filter
    with pytest.raises(ValueError):
        audio.pitch_to_bin(120)


@needs_fluidsynth
def test_rendered_note_lands_in_its_band(tmp_path):
    for pitch in (45, 60, 69, 84):
        write_midi(tmp_path / "note.mid", [(1, 2, pitch, 100)])  # one beat at 120 bpm: onset at 0.5 s
        x = audio.synthesize(tmp_path / "note.mid", SOUNDFONT)
        spec = audio.spectrogram(x)
        o = audio.onset_frame(0.5)
        assert spec[:, : o - 2].max() < 0.01  # silence (up to resampling ripple) before the note
        assert spec[:, o : o + 10].mean(axis=1).argmax() == audio.pitch_to_bin(pitch)


@needs_fluidsynth
def test_detect_onsets_finds_the_notes_of_a_render(tmp_path):
    # A phrase with a held chord, repeated notes and a quiet note: every onset found at MSMD's onset frame (one
    # may be a frame off), nothing else.
    notes = [(1, 0.5, 60, 90), (1.5, 0.5, 64, 90), (2, 2, 67, 90), (2, 2, 48, 90), (4, 0.5, 72, 100),
             (4.5, 0.5, 72, 100), (5, 0.25, 71, 40), (5.25, 1.75, 69, 80), (7, 1, 65, 70)]
    write_midi(tmp_path / "phrase.mid", notes)  # 120 bpm: beat b starts at b / 2 s
    spec = audio.spectrogram(audio.synthesize(tmp_path / "phrase.mid", SOUNDFONT))
    truth = np.unique(audio.onset_frame(np.array([start for start, *_ in notes]) / 2))
    found = audio.detect_onsets(spec)
    assert len(found) == len(truth), (found, truth)
    assert np.abs(found - truth).max() <= 1, (found, truth)
    assert np.sum(found != truth) <= 1, (found, truth)
    assert np.all(np.diff(found) > 0)


def test_detect_onsets_of_silence_and_bad_input():
    assert audio.detect_onsets(np.zeros((92, 50), np.float32)).tolist() == []
    with pytest.raises(ValueError, match="spectrogram"):
        audio.detect_onsets(np.zeros(50, np.float32))


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG", "MP3"])
def test_load_audio_formats_resamples_and_mixes(tmp_path, fmt):
    n = np.arange(44100)
    left = 0.5 * np.sin(2 * np.pi * 441.43 * n / 44100)
    stereo = np.stack([left, left], axis=1)  # mono mix = the same tone
    path = tmp_path / f"tone.{fmt.lower()}"
    soundfile.write(path, stereo, 44100, format=fmt)
    x = audio.load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - SR) < 0.06 * SR  # mp3 encoders add a little padding
    spec = audio.spectrogram(x)
    assert spec[:, 5:15].mean(axis=1).argmax() == audio.pitch_to_bin(69)


def test_load_audio_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        audio.load_audio(tmp_path / "missing.wav")
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(ValueError, match="Cannot decode"):
        audio.load_audio(bad)
    with pytest.raises(ValueError, match="mono"):
        audio.spectrogram(np.zeros((100, 2)))
