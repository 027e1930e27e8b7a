"""Writes one engraved piece and its renders as an MSMD v1.1 piece folder.

The folder is assembled under `<root>/.partial/`, synced to the disk and renamed into place only when complete,
so a folder `<root>/<piece>` always holds a whole piece: an interrupted build (a kill, a power cut, a full disk)
leaves no half-written piece behind, and a rerun can skip every piece folder that exists.
"""

import hashlib
import os
import shutil
import tempfile

import numpy as np

from keras_asr import atomic
from keras_asr.geometry import FPS
from tfds_msmd import layout
from tfds_msmd import layout_writer
from tfds_msmd.corpus import synth



def write_piece(root, piece, engraving, renders, keep_audio=True):
    """Synthesizes the renders of an engraved piece and writes its MSMD folder `<root>/<piece>`.

    Every sounding notehead gets, per performance P, the MuNG data items `P_note_event_idx`,
    `P_onset_frame` (ceil(onset s * 20)) and `P_onset_seconds`; event i of every performance is notehead i.

    Args:
        root: corpus root folder.
        piece: piece name, `composer__opus__file`.
        engraving: an `engrave.Engraving`.
        renders: (tempo ratio, sound) pairs, one performance each; a sound is a SoundFont name or
            `<SoundFont>-p<program>-<style>` (see `synth`).
        keep_audio: keep `<piece>.wav` in each performance folder (real MSMD ships none).

    Returns:
        The piece folder.
    """
    from keras_asr import audio

    final = os.path.join(root, piece)
    partial_root = os.path.join(root, ".partial")
    os.makedirs(partial_root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f"{piece}.{os.getpid()}.", dir=partial_root)  # the pid: see remove_abandoned
    try:
        heads = engraving.noteheads
        data = [{"midi_pitch_code": int(n.pitch)} for n in heads]
        for ratio, soundfont in renders:
            name = layout.performance_name(piece, ratio, soundfont)
            perf_path = os.path.join(tmp, "performances", name)
            os.makedirs(perf_path)
            font, program, style = synth.parse_sound(soundfont)
            # Expressive choices are seeded by the performance name: every rebuild plays the same way.
            seed = int(hashlib.md5(name.encode()).hexdigest()[:8], 16)
            events, seconds, velocities, pedal = synth.perform(heads, ratio, style, seed)
            midi, wav = os.path.join(tmp, "render.midi"), os.path.join(tmp, "render.wav")
            synth.write_midi(events, midi, velocities, pedal, program)
            synth.render(midi, font, wav, room_seed=seed if style == "room" else None)
            spec = audio.spectrogram(audio.load_audio(wav))
            # From the exact seconds, not the float32 events: onsets on the 50 ms grid are common, and
            # float32 rounding would push some to the next frame.
            onsets = np.ceil(np.round(seconds * FPS, 6)).astype(np.int64)
            layout_writer.write_performance(perf_path, piece, midi, spec, events, onsets, wav if keep_audio else None)
            for i, d in enumerate(data):
                d[f"{name}_note_event_idx"] = i
                d[f"{name}_onset_frame"] = int(onsets[i])
                d[f"{name}_onset_seconds"] = round(float(seconds[i]), 4)
            if os.path.exists(wav):
                os.remove(wav)
        score_path = os.path.join(tmp, "scores", f"{piece}_ly")
        for page, image in enumerate(engraving.pages):
            on_page = [(n, d) for n, d in zip(heads, data) if n.page == page]
            nodes = [dict(top=n.top, left=n.left, height=n.height, width=n.width, data=d) for n, d in on_page]
            notes = [n.centre for n, _ in on_page]
            layout_writer.write_page(score_path, page + 1, image, notes, engraving.systems[page], nodes,
                                     document=f"{piece}_{page + 1:02d}")
        _sync_tree(tmp)  # the files' data reaches the disk before the rename makes the piece count as built
        os.rename(tmp, final)
        atomic.fsync(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def remove_abandoned(root):
    """Deletes the half-written pieces under `<root>/.partial/` of builds that were killed (their process is gone);
    those of running builds stay. Returns how many were removed."""
    partial_root = os.path.join(root, ".partial")
    removed = 0
    for name in os.listdir(partial_root) if os.path.isdir(partial_root) else ():
        parts = name.rsplit(".", 2)
        pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
        if pid is not None and _alive(pid):
            continue
        shutil.rmtree(os.path.join(partial_root, name), ignore_errors=True)
        removed += 1
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _sync_tree(folder):
    """fsync every file and folder under `folder`, the deepest first."""
    for parent, _, files in os.walk(folder, topdown=False):
        for name in files:
            atomic.fsync(os.path.join(parent, name))
        atomic.fsync(parent)
