#!/usr/bin/env bash
# The main job on the embedded default: build the small offline corpus (music21 scores engraved with verovio,
# rendered with FluidSynth) as the TFDS dataset msmd/small, check its alignment, index its scores with the
# committed demo model, and identify a recording of its test piece rendered with the held-out SoundFont.
# Outputs go to outputs/demo/ (the ranked answer is printed; the picture is outputs/demo/query.png).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow} TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
out=outputs/demo
model=${MODEL:-pretrained/bl2_lc_at.keras}
corpus="$out/tensorflow_datasets/downloads/msmd_offline_small"
mkdir -p "$out"

echo "== 1. tfds build msmd --config small (offline corpus; resumable; ends with the corpus' alignment check)"
tfds build msmd --imports tfds_msmd --config small --data_dir "$out/tensorflow_datasets"

echo "== 2. a library of score PDFs and a recording of the test piece (held-out SoundFont)"
python3 examples/demo_library.py "$corpus" "$out"

echo "== 3. keras-asr index (model: $model)"
keras-asr index --model "$model" "$out"/library/*.pdf --out "$out/library.index"

echo "== 4. keras-asr query: which piece is playing, and where?"
keras-asr query --index "$out/library.index" "$out"/*.wav --plot "$out/query.png"
echo "== done: the picture is $out/query.png"
