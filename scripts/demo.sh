#!/usr/bin/env bash
# The main job on the embedded default: build the small offline corpus (music21 scores engraved with verovio,
# rendered with FluidSynth) as the TFDS dataset msmd/small, check its alignment, index its scores with the
# committed demo model, and identify a recording of its test piece rendered with the held-out SoundFont.
# Outputs go to outputs/demo/ (the answer and the timeline are printed; the path through the score is drawn in
# outputs/demo/query.png and followed in the video outputs/demo/follow.mp4).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export KERAS_BACKEND=${KERAS_BACKEND:-tensorflow} TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-3}
out=outputs/demo
model=${MODEL:-pretrained/varied_bl2_lc_at.keras}
corpus="$out/tensorflow_datasets/downloads/msmd_offline_small"
mkdir -p "$out"
# TensorFlow 2.21 writes a few start-up lines from C++ before its logging is set up, whatever
# TF_CPP_MIN_LOG_LEVEL says; they are dropped from the steps' output (stderr merged into it, in order).
quiet() {
  local startup='^(WARNING: All log messages before absl::InitializeLog|I0000 |To enable the following instructions)'
  "$@" 2>&1 | { grep -v -E "$startup" || true; }
}

echo "== 1. tfds build msmd --config small (offline corpus; resumable; ends with the corpus' alignment check)"
# The builder's own progress bars and dataset summary go to a log; the pieces, the check and the total are shown.
if ! tfds build msmd --imports tfds_msmd --config small --data_dir "$out/tensorflow_datasets" \
    > "$out/tfds_build.log" 2>&1; then
  tail -n 20 "$out/tfds_build.log"; echo "tfds build failed: $out/tfds_build.log"; exit 1
fi
grep -E '^\[[0-9]+/[0-9]+ |^alignment check|^corpus |generation completed|already exists' "$out/tfds_build.log" || true
echo "(builder log: $out/tfds_build.log)"

echo "== 2. a library of score PDFs and a recording of the test piece (held-out SoundFont)"
quiet python3 examples/demo_library.py "$corpus" "$out"

echo "== 3. keras-asr index (model: $model)"
quiet keras-asr index --model "$model" "$out"/library/*.pdf --out "$out/library.index"

echo "== 4. keras-asr query: which piece is playing, and where?"
quiet keras-asr query --index "$out/library.index" "$out"/*.wav --plot "$out/query.png" --video "$out/follow.mp4"
echo "== done: the path through the score is drawn in $out/query.png; the score-following video is $out/follow.mp4"
