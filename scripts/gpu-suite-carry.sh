#!/usr/bin/env bash
# Prepares build/gpu-carry/ for a GPU host that has torch, transformers, peft and Pillow but
# not this project's other dependencies, no registry and no model hub (docs/benchmarks.md,
# "GPU"): Python 3.12 x86-64 wheels of pydantic and orjson (what the records and prompt
# builders import; typing-extensions as new as pydantic wants), and SmolLM2's tokenizer as a plain folder. About 8 MB.
set -euo pipefail
source "$(dirname "$0")/env.sh"
set +u
cd "$ROOT"
OUT="build/gpu-carry"
rm -rf "$OUT" && mkdir -p "$OUT/whl"
# the versions of this venv, so the GPU run builds its records with the same code
pins=$(python - <<'PY'
from importlib.metadata import version
print(" ".join(f"{n}=={version(n)}" for n in
      ("pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions",
       "orjson")))
PY
)
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$OUT/whl" $pins
python -m caslie.bench.gpu_suite --save-tokenizer "$OUT/tokenizer"
du -sh "$OUT"
