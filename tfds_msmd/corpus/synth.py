"""Synthesis: note events at a tempo ratio -> standard MIDI file -> FluidSynth -> mono 22,050 Hz wav.

The fluidsynth command line is used (not pyfluidsynth, whose presence makes `import partitura` try to
download a SoundFont). FluidSynth's own reverb and chorus are off, so a note's energy starts at its onset and
the render is the same on every run.

A render is named by its "sound": a SoundFont name alone ("FluidR3_GM": piano program 0, every note at
velocity 80, the score's timing) or `<SoundFont>-p<program>-<style>`, e.g. "TimGM6mb-p1-expr":

- the program is one of the General MIDI pianos every installed SoundFont has (0 acoustic grand, 1 bright
  acoustic, 2 electric grand; FluidR3_GM and TimGM6mb have no honky-tonk, and a missing preset is silent);
- style "expr" plays like a pianist (`perform`): a slowly varying tempo, chords spread by a few ms, velocities
  that follow a phrase-level dynamic curve with accents and vary from note to note, and the sustain pedal
  changed with the bass;
- style "room" is "expr" in a room: convolved with a synthetic impulse response (`room`) plus faint noise.

Onsets in the written performance are those of the MIDI file, so onset frames follow the performance exactly.
"""

import os
import shutil
import subprocess
import tempfile

import numpy as np

from keras_asr.geometry import SAMPLE_RATE

SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3", "/usr/share/soundfonts")
_TICKS_PER_BEAT = 480
_US_PER_BEAT = 500_000  # 120 bpm: one tick = 1/960 s, so seconds map to ticks without a tempo map.
_VELOCITY = 80
PIANO_PROGRAMS = (0, 1, 2)
STYLES = ("dry", "expr", "room")


def soundfont_path(name):
    """Path of the SoundFont `name` (e.g. "FluidR3_GM"), searched in the Debian SoundFont folders.

    Raises:
        FileNotFoundError: if no `name.sf2` or `name.sf3` is installed.
    """
    for d in SOUNDFONT_DIRS:
        for ext in (".sf2", ".sf3"):
            path = os.path.join(d, name + ext)
            if os.path.exists(path):
                return path
    raise FileNotFoundError(f"SoundFont {name!r} not found in {SOUNDFONT_DIRS}; run scripts/install.sh.")


def note_events(noteheads, ratio=1.0):
    """MSMD note events of a performance at tempo `ratio` (2.0 plays twice as fast).

    Args:
        noteheads: `engrave.Notehead`s sorted by (onset, pitch, staff).
        ratio: tempo ratio.

    Returns:
        float32 (n, 5): onset s, MIDI pitch, duration s, track (staff), channel (0).
    """
    events = [(n.onset / ratio, n.pitch, n.duration / ratio, n.staff, 0) for n in noteheads]
    return np.asarray(events, np.float32).reshape(-1, 5)


def parse_sound(sound):
    """"FluidR3_GM" -> ("FluidR3_GM", 0, "dry"); "TimGM6mb-p1-expr" -> ("TimGM6mb", 1, "expr")."""
    parts = sound.rsplit("-", 2)
    if len(parts) == 3 and parts[1].startswith("p") and parts[1][1:].isdigit() and parts[2] in STYLES:
        return parts[0], int(parts[1][1:]), parts[2]
    return sound, 0, "dry"


def perform(noteheads, ratio=1.0, style="dry", seed=0):
    """A performance of the noteheads at tempo `ratio`.

    Args:
        noteheads: `engrave.Notehead`s.
        ratio: tempo ratio (2.0 plays twice as fast).
        style: "dry" (the score's timing, velocity 80, no pedal), or "expr"/"room" (expressive; see above).
        seed: seed of the expressive choices (the same seed gives the same performance).

    Returns:
        (events, onsets, velocities, pedal): events float32 (n, 5) as `note_events`; the exact onsets in
        seconds (float64, the MIDI's); int velocities (n,); pedal (time s, down) changes.
    """
    onsets = np.array([n.onset for n in noteheads], np.float64) / ratio
    offsets = onsets + np.array([n.duration for n in noteheads], np.float64) / ratio
    velocity = np.full(len(noteheads), _VELOCITY)
    if style == "dry" or not len(noteheads):
        events = note_events(noteheads, ratio)
        return events, onsets, velocity, []
    rng = np.random.default_rng(seed)
    # Tempo curve: the local tempo drifts by up to about +-12 % over periods of 6-20 s.
    periods, phases = rng.uniform(6, 20, 2), rng.uniform(0, 2 * np.pi, 2)
    grid = np.arange(0, offsets.max() + 1.0, 0.01)
    speed = np.exp(0.08 * np.sin(2 * np.pi * grid / periods[0] + phases[0])
                   + 0.04 * np.sin(2 * np.pi * grid / periods[1] + phases[1]))
    warped = np.concatenate([[0.0], np.cumsum(0.01 / speed[:-1])])
    onsets, offsets = np.interp(onsets, grid, warped), np.interp(offsets, grid, warped)
    # Chords are not struck at once: each note moves by a few ms (at most 25).
    onsets = np.maximum(0.0, onsets + np.clip(rng.normal(0, 0.008, len(onsets)), -0.025, 0.025))
    # Velocity: a dynamic curve over phrases (about pp to f), melody above accompaniment, note-to-note spread.
    dyn_t = np.arange(0, offsets.max() + 8.0, 4.0)
    dynamics = np.clip(70 + np.cumsum(rng.normal(0, 8, len(dyn_t))), 40, 105)
    pitches = np.array([n.pitch for n in noteheads])
    _, chord_of = np.unique([n.onset for n in noteheads], return_inverse=True)
    highest = np.full(chord_of.max() + 1, -1)
    np.maximum.at(highest, chord_of, pitches)
    top = pitches == highest[chord_of]
    velocity = np.interp(onsets, dyn_t, dynamics) + 8 * top + rng.normal(0, 5, len(onsets))
    velocity = np.clip(np.round(velocity), 20, 120).astype(int)
    events = np.stack([onsets, pitches, offsets - onsets, [n.staff for n in noteheads],
                       np.zeros(len(onsets))], axis=1).astype(np.float32)
    # Sustain pedal: changed (up, then down) just after each new bass note at least 0.4 s after the last.
    pedal, last = [], -np.inf
    for t in np.sort(onsets[np.array([n.staff == 1 for n in noteheads])]):
        if t - last >= 0.4:
            pedal += [(max(0.0, t - 0.01), False), (t + 0.06, True)]
            last = t
    return events, onsets, velocity, pedal


def write_midi(events, path, velocities=None, pedal=(), program=0):
    """Writes note events (as `note_events` returns) to a type-0 standard MIDI file.

    Args:
        events: float32 (n, 5) note events.
        path: output path.
        velocities: per-event velocities (default 80 for all).
        pedal: (time s, down) sustain-pedal changes.
        program: General MIDI program (0-7 are pianos).
    """
    import mido

    messages = []
    velocities = np.full(len(events), _VELOCITY) if velocities is None else velocities
    for (onset, pitch, duration, _, channel), vel in zip(events, velocities):
        on, off = round(onset * 960), round((onset + max(duration, 0.01)) * 960)
        note = dict(channel=int(channel), note=int(pitch))
        messages.append((on, 1, mido.Message("note_on", velocity=int(vel), **note)))
        messages.append((off, 0, mido.Message("note_off", velocity=0, **note)))
    for t, down in pedal:
        messages.append((round(t * 960), 0, mido.Message("control_change", control=64, value=127 if down else 0)))
    # Note-offs come before note-ons at equal ticks (a repeated pitch re-attacks), then by the messages' bytes.
    messages.sort(key=lambda m: (m[0], m[1], m[2].bytes()))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=_US_PER_BEAT), mido.Message("program_change",
                                                                                             program=program)])
    tick = 0
    for t, _, msg in messages:
        track.append(msg.copy(time=t - tick))
        tick = t
    mido.MidiFile(type=0, ticks_per_beat=_TICKS_PER_BEAT, tracks=[track]).save(path)


def render(midi_path, soundfont, wav_path, timeout=1800, room_seed=None):
    """Renders a MIDI file with FluidSynth to a mono 16-bit wav at 22,050 Hz.

    Args:
        midi_path: the MIDI file.
        soundfont: SoundFont name (see `soundfont_path`) or path.
        wav_path: output wav path.
        timeout: seconds before the fluidsynth process is killed.
        room_seed: if given, the dry render is played in a room (`room`) made from this seed.

    `soundfont` "SampledPiano" plays the recorded piano of `sampler` instead.

    Raises:
        RuntimeError: if fluidsynth fails or writes no audio.
    """
    import soundfile

    from tfds_msmd.corpus import sampler

    if soundfont == sampler.SAMPLED_PIANO:
        return sampler.render_sampled(midi_path, wav_path, SAMPLE_RATE, room_seed)
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None:
        raise RuntimeError("fluidsynth is not installed; run scripts/install.sh.")
    sf_path = soundfont if os.path.exists(soundfont) else soundfont_path(soundfont)
    with tempfile.TemporaryDirectory() as tmp:
        stereo = os.path.join(tmp, "out.wav")
        cmd = [fluidsynth, "-ni", "-q", "-R", "0", "-C", "0", "-g", "1.0", "-r", str(SAMPLE_RATE),
               "-o", "synth.dynamic-sample-loading=1", "-F", stereo, sf_path, os.fspath(midi_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not os.path.exists(stereo):
            raise RuntimeError(f"fluidsynth failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
        signal, sr = soundfile.read(stereo, dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE or not len(signal):
        raise RuntimeError(f"fluidsynth wrote {len(signal)} samples at {sr} Hz.")
    mono = signal.mean(axis=1)
    if room_seed is not None:
        mono = room(mono, room_seed)
    soundfile.write(wav_path, np.clip(mono, -1, 1), SAMPLE_RATE, subtype="PCM_16")


def room(signal, seed):
    """A dry signal in a room: convolved with a synthetic impulse response, plus faint noise.

    The impulse response is the direct sound, a few early reflections (3-25 ms) and a diffuse tail of
    exponentially decaying noise (RT60 0.3-1.2 s, darker as it decays); the noise is low-passed white noise
    35-50 dB below the signal. Direct sound comes first and loudest, so onsets stay where the MIDI has them.
    """
    import scipy.signal

    rng = np.random.default_rng(seed)
    rt60 = rng.uniform(0.3, 1.2)
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.normal(0, 1, n) * np.exp(-6.9 * t / rt60)
    tail = scipy.signal.lfilter([0.3], [1, -0.7], tail)  # high frequencies die first
    ir = np.zeros(n)
    ir[0] = 1.0
    for delay, gain in zip(rng.uniform(0.003, 0.025, 4), rng.uniform(0.1, 0.4, 4)):
        ir[int(delay * SAMPLE_RATE)] += gain
    wet = rng.uniform(0.1, 0.35)
    start = int(0.01 * SAMPLE_RATE)  # the diffuse tail starts after the direct sound
    ir[start:] += wet * tail[:n - start] / np.sqrt(np.sum(tail ** 2))
    out = scipy.signal.fftconvolve(signal, ir)[:len(signal) + n // 2]
    noise = scipy.signal.lfilter([0.5], [1, -0.5], rng.normal(0, 1, len(out)))
    snr_db = rng.uniform(35, 50)
    rms = np.sqrt(np.mean(out ** 2)) or 1.0
    out = out + noise * rms / np.sqrt(np.mean(noise ** 2)) * 10 ** (-snr_db / 20)
    return (out / max(1.0, np.abs(out).max() / 0.95)).astype(np.float32)
