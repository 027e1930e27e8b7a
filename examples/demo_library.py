"""Turns an offline corpus into what a user of `keras-asr` has: score PDFs and a recording.

Writes OUT/library/<piece>.pdf (the engraved pages of every piece) and OUT/<test piece>.wav, the first test
piece rendered with the held-out test SoundFont (MuseScore_General, never heard in training):

    python examples/demo_library.py CORPUS_ROOT OUT
"""

import argparse
import glob
import os

import soundfile
from PIL import Image

from keras_asr import audio
from tfds_msmd import layout

TEST_SOUNDFONT = "/usr/share/sounds/sf3/MuseScore_General.sf3"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="corpus root in MSMD layout (with split.yaml)")
    parser.add_argument("out", help="output folder")
    args = parser.parse_args(argv)
    split = layout.read_split(layout.find_split_file(args.corpus))
    os.makedirs(os.path.join(args.out, "library"), exist_ok=True)
    for piece in sorted(p for pieces in split.values() for p in pieces):
        pages = sorted(glob.glob(os.path.join(layout.score_dir(os.path.join(args.corpus, piece)), "img", "*.png")))
        images = [Image.open(p).convert("L") for p in pages]
        images[0].save(os.path.join(args.out, "library", f"{piece}.pdf"), save_all=True, append_images=images[1:])
    piece = split["test"][0]
    midi = glob.glob(os.path.join(args.corpus, piece, "performances", f"{piece}_tempo-1000_*", "*.mid*"))[0]
    wav = os.path.join(args.out, f"{piece}.wav")
    soundfile.write(wav, audio.synthesize(midi, TEST_SOUNDFONT), audio.SAMPLE_RATE)
    print(f"{len(split['train']) + len(split['valid']) + len(split['test'])} score PDFs in {args.out}/library; "
          f"recording of test piece {piece}: {wav}")


if __name__ == "__main__":
    main()
