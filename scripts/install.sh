#!/usr/bin/env bash
# Install recap, every shipped plugin and the example plugin (editable) into .venv.
# torch is pinned by constraints.txt so pip takes the CPU wheel instead of a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! ldconfig -p | grep -q libEGL.so.1; then
  apt-get update -q && apt-get install -y -q libegl1 libgl1-mesa-dri libopengl0
fi

python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
pip install -q -c constraints.txt torch==2.13.0
args=(-e ".[test]")
for p in plugins/*/; do args+=(-e "$p"); done
[ -d examples/recap-extractor-example ] && args+=(-e examples/recap-extractor-example)
pip install -q -c constraints.txt "${args[@]}"
echo "installed: $(.venv/bin/recap --version 2>/dev/null || echo recap) into .venv"
