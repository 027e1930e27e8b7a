"""Synthesis: note events at a tempo ratio -> standard MIDI file -> FluidSynth -> mono 22,050 Hz wav.

The fluidsynth command line is used (not pyfluidsynth, whose presence makes `import partitura` try to
download a SoundFont). Reverb and chorus are off, so a note's energy starts at its onset and the render is
the same on every run.
"""

import os
import shutil
import struct
import subprocess
import tempfile

import numpy as np

SAMPLE_RATE = 22050
SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3", "/usr/share/soundfonts")
_TICKS_PER_BEAT = 480
_US_PER_BEAT = 500_000  # 120 bpm: one tick = 1/960 s, so seconds map to ticks without a tempo map.
_VELOCITY = 80


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


def write_midi(events, path):
    """Writes note events (as `note_events` returns) to a type-0 standard MIDI file, piano (program 0)."""
    messages = []
    for onset, pitch, duration, _, channel in events:
        on, off = round(onset * 960), round((onset + max(duration, 0.01)) * 960)
        # Sort key puts note-offs before note-ons at equal ticks: a repeated pitch re-attacks.
        messages.append((on, 1, bytes([0x90 | int(channel), int(pitch), _VELOCITY])))
        messages.append((off, 0, bytes([0x80 | int(channel), int(pitch), 0])))
    messages.sort(key=lambda m: (m[0], m[1], m[2]))
    track = bytearray(b"\x00\xff\x51\x03" + _US_PER_BEAT.to_bytes(3, "big") + b"\x00\xc0\x00")
    tick = 0
    for t, _, msg in messages:
        track += _varlen(t - tick) + msg
        tick = t
    track += b"\x00\xff\x2f\x00"
    with open(path, "wb") as f:
        f.write(b"MThd" + struct.pack(">IHHH", 6, 0, 1, _TICKS_PER_BEAT))
        f.write(b"MTrk" + struct.pack(">I", len(track)) + track)


def _varlen(value):
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def render(midi_path, soundfont, wav_path, timeout=1800):
    """Renders a MIDI file with FluidSynth to a mono 16-bit wav at 22,050 Hz.

    Args:
        midi_path: the MIDI file.
        soundfont: SoundFont name (see `soundfont_path`) or path.
        wav_path: output wav path.
        timeout: seconds before the fluidsynth process is killed.

    Raises:
        RuntimeError: if fluidsynth fails or writes no audio.
    """
    import soundfile

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
    soundfile.write(wav_path, np.clip(signal.mean(axis=1), -1, 1), SAMPLE_RATE, subtype="PCM_16")
