#!/usr/bin/env bash
# Set up everything the studio needs on a fresh Debian/Ubuntu machine, idempotently:
#   bash install.sh          # system packages (if missing) + .venv with the runtime requirements
#   bash install.sh --dev    # ... plus the test tools (pytest, ruff, Playwright, Chromium, espeak-ng, sox)
set -euo pipefail
cd "$(dirname "$0")"

dev=0
for arg in "$@"; do
  case "$arg" in
    --dev) dev=1 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $arg (use --dev or --help)" >&2; exit 2 ;;
  esac
done

# open-jtalk-mecab-naist-jdic: the Japanese dictionary upstream's models were trained with (naist-jdic 1.11);
# build-essential + python3-dev: pyopenjtalk is a source package, compiled on install (cmake comes from PyPI);
# ffmpeg: the WebUI's streamed audio output is encoded by Gradio with the ffmpeg program.
apt_packages=(libsndfile1 open-jtalk-mecab-naist-jdic build-essential python3-dev ffmpeg)
if [ "$dev" = 1 ]; then
  apt_packages+=(espeak-ng sox chromium chromium-driver)
fi

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    echo "Installing system packages: ${missing[*]}"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
  else
    echo "Please install these system packages with your package manager: ${missing[*]}" >&2
  fi
fi

python_bin="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# pyopenjtalk-plus (used before) installs under the same import name as pyopenjtalk: remove it first.
if .venv/bin/python -m pip show pyopenjtalk-plus >/dev/null 2>&1; then
  .venv/bin/python -m pip uninstall --quiet -y pyopenjtalk-plus
fi
.venv/bin/python -m pip install --quiet -r requirements.txt
if [ "$dev" = 1 ]; then
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
fi
echo "Done. Start the studio with: .venv/bin/python webui.py"
