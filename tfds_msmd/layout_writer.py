"""The writing half of the MSMD v1.1 layout (`tfds_msmd.layout` reads it): what the offline corpus writes.

Every file is written as `layout` reads it back: page images, notehead and system coordinates, MuNG noteheads
with their alignment data items, performance folders and the split file.

Example:

```python
layout_writer.write_page(score_path, 1, image, notes, systems, nodes)   # img/01.png, coords/*_01.npy, mung/01.xml
```
"""

import os
import xml.etree.ElementTree as ET

import numpy as np


def write_page(score_path, number, image, notes, systems, mung_nodes, document=""):
    """Writes one score page: `img/NN.png`, `coords/notes_NN.npy`, `coords/systems_NN.npy`, `mung/NN.xml`.

    Args:
        score_path: the `<piece_dir>/scores/<piece>_ly` folder.
        number: page number NN (1-based).
        image: uint8 (H, 835) grayscale page.
        notes: (n, 2) notehead centres (y, x), in the order of `mung_nodes`.
        systems: (s, 4, 2) system corners (y, x): top-left, top-right, bottom-right, bottom-left.
        mung_nodes: one dict per notehead: top, left, height, width (page pixels) and data (key -> int, float
            or str); written as `noteheadFull` nodes.
        document: the MuNG document name.
    """
    from PIL import Image

    for sub in ("img", "coords", "mung"):
        os.makedirs(os.path.join(score_path, sub), exist_ok=True)
    Image.fromarray(np.asarray(image, np.uint8), mode="L").save(os.path.join(score_path, "img", f"{number:02d}.png"))
    np.save(os.path.join(score_path, "coords", f"notes_{number:02d}.npy"), np.asarray(notes, np.float32).reshape(-1, 2))
    np.save(os.path.join(score_path, "coords", f"systems_{number:02d}.npy"),
            np.asarray(systems, np.float32).reshape(-1, 4, 2))
    write_mung(os.path.join(score_path, "mung", f"{number:02d}.xml"), mung_nodes, document)


def write_mung(path, nodes, document=""):
    """Writes MuNG XML: a `<Nodes>` list of `noteheadFull` `<Node>`s with typed `<DataItem>`s (see `write_page`)."""
    types = {bool: "int", int: "int", np.integer: "int", float: "float", np.floating: "float", str: "str"}
    root = ET.Element("Nodes", dataset="MSMD", document=document)
    for i, node in enumerate(nodes):
        el = ET.SubElement(root, "Node")
        ET.SubElement(el, "Id").text = str(i)
        ET.SubElement(el, "ClassName").text = "noteheadFull"
        for key in ("Top", "Left", "Width", "Height"):
            ET.SubElement(el, key).text = f"{float(node[key.lower()]):.2f}"
        data = ET.SubElement(el, "Data")
        for key, value in node["data"].items():
            kind = next(t for cls, t in types.items() if isinstance(value, cls))
            ET.SubElement(data, "DataItem", key=key, type=kind).text = str(value)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def write_performance(perf_path, piece, midi_path, spectrogram, notes, onsets, audio_path=None):
    """Writes a performance folder: `<piece>.midi`, `[<piece>.wav]`, `features/<piece>_{spec,notes,onsets}.npy`.

    Args:
        perf_path: the `<piece_dir>/performances/<performance>` folder.
        piece: the piece name (file stem).
        midi_path: MIDI file to move in as `<piece>.midi`.
        spectrogram: float32 (92, N).
        notes: (n, 5) note events: onset s, pitch, duration s, track, channel.
        onsets: (n,) onset frames.
        audio_path: optional wav file to move in as `<piece>.wav`.
    """
    features = os.path.join(perf_path, "features")
    os.makedirs(features, exist_ok=True)
    os.replace(midi_path, os.path.join(perf_path, f"{piece}.midi"))
    if audio_path is not None:
        os.replace(audio_path, os.path.join(perf_path, f"{piece}.wav"))
    np.save(os.path.join(features, f"{piece}_spec.npy"), np.asarray(spectrogram, np.float32))
    np.save(os.path.join(features, f"{piece}_notes.npy"), np.asarray(notes, np.float32).reshape(-1, 5))
    np.save(os.path.join(features, f"{piece}_onsets.npy"), np.asarray(onsets, np.int64))


def write_split(root, split, name="split.yaml"):
    """Writes the split file `<root>/split.yaml`: {"train": [...], "valid": [...], "test": [...]}."""
    import yaml

    with open(os.path.join(root, name), "w") as f:
        yaml.safe_dump({k: sorted(split.get(k, ())) for k in ("train", "valid", "test")}, f)
