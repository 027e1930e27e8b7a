"""Tests for the sampled piano: MIDI in, the recorded notes out where, how loud and how long the MIDI says."""

import numpy as np
import pytest

from tfds_msmd.corpus import sampler
from tfds_msmd.corpus import synth

pytestmark = pytest.mark.single_backend
RATE = synth.SAMPLE_RATE


def write(tmp_path, events, velocities, pedal=()):
    path = tmp_path / "p.midi"
    synth.write_midi(np.asarray(events, np.float32), path, velocities, pedal)
    return path


def rms(signal, start, stop):
    return float(np.sqrt(np.mean(signal[int(start * RATE):int(stop * RATE)] ** 2)))


def test_midi_reads_back_as_written(tmp_path):
    events = [(0.25, 60, 0.5, 0, 0), (0.25, 64, 0.75, 0, 0), (1.0, 60, 0.5, 1, 0)]
    notes, pedal = sampler.read_midi(write(tmp_path, events, [40, 90, 127], [(0.1, True), (1.6, False)]))
    assert [(round(a, 4), round(b, 4), p, v) for a, b, p, v in notes] == [
        (0.25, 0.75, 60, 40), (0.25, 1.0, 64, 90), (1.0, 1.5, 60, 127)]
    assert [(round(t, 4), d) for t, d in pedal] == [(0.1, True), (1.6, False)]


def test_notes_sound_at_their_onsets_as_loud_and_as_long_as_played():
    # C4 at 0.5 s soft, C4 at 2.5 s loud (released at 3 s), E4 at 4.5 s with the pedal held to 6 s.
    notes = [(0.5, 1.0, 60, 40), (2.5, 3.0, 60, 110), (4.5, 5.0, 64, 110)]
    signal = sampler.play(notes, [(4.4, True), (6.0, False)], RATE)
    for onset, _, _, _ in notes:
        assert rms(signal, onset - 0.05, onset - 0.005) < 0.3 * rms(signal, onset, onset + 0.05)
    assert rms(signal, 2.5, 2.7) > 4 * rms(signal, 0.5, 0.7)  # velocity 110 against 40
    # The damper ends the note released at 3 s; the pedal keeps the one released at 5 s sounding until 6 s.
    assert rms(signal, 3.6, 4.4) < 0.01 * rms(signal, 2.5, 2.7)
    assert rms(signal, 5.2, 5.8) > 0.1 * rms(signal, 4.5, 4.7) and rms(signal, 6.6, 7.0) < 1e-3


def test_keys_beyond_the_recordings_are_resampled_to_their_pitch():
    for pitch in (sampler.LOWEST - 5, sampler.HIGHEST + 2, 69):
        signal = sampler.play([(0.0, 1.0, pitch, 100)], [], RATE)[: RATE // 2]
        spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
        peak = np.fft.rfftfreq(len(signal), 1 / RATE)[np.argmax(spectrum)]
        expected = 440.0 * 2 ** ((pitch - 69) / 12)
        # The strongest partial is the fundamental or one of its first harmonics, in tune.
        harmonic = round(peak / expected)
        assert 1 <= harmonic <= 4 and abs(peak / harmonic / expected - 1) < 0.02, (pitch, peak, expected)


def test_a_performance_renders_like_a_soundfont(tmp_path):
    import soundfile

    path = write(tmp_path, [(0.2, 60, 0.4, 0, 0), (0.6, 67, 0.4, 0, 0)], [80, 80])
    synth.render(path, sampler.SAMPLED_PIANO, tmp_path / "p.wav", room_seed=1)
    signal, rate = soundfile.read(tmp_path / "p.wav")
    assert rate == RATE and signal.ndim == 1 and 0.5 < np.abs(signal).max() <= 1.0
