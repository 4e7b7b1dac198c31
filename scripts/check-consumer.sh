#!/usr/bin/env bash
# Checks that another package can depend on PruneKit by version and gets its fast kernels: builds
# Examples/oracle-consumer against a tagged clone of this repository, as SwiftPM would fetch a
# release, and runs it (Docs/using-prunekit.md).
#
#   scripts/check-consumer.sh
#
# Steps, all in a temporary folder that is removed at the end (nothing is written in the repository):
#   1. the version: PruneKitVersion.current in Sources/PruneFormats/JSON.swift, the one place it
#      is written
#   2. a clone of the repository's HEAD (committed work only; uncommitted changes are not in it)
#      whose only tag is that version
#   3. a copy of Examples/oracle-consumer, built with `swift build -c release` and nothing else,
#      its dependency `from: "0.6.0"` resolved from the clone (PRUNEKIT_GIT_URL=file://…), in its
#      own scratch folder, without SwiftPM's shared caches (nothing outside the temporary folder)
#   4. `oracle-consumer certify` must print the version it was built from and PASS
#   5. on a CPU with AVX-512, it must have picked the AVX-512 micro-kernels: the dependency was
#      built with PruneKit's own -march flags (they are what SwiftPM refused before tools 6.2)
#   6. `oracle-consumer gemm --size 512` must reach 5 GFLOP/s. With PruneKit's flags a 512³ SGEMM
#      runs at ~100 GFLOP/s on one core of the project's machine, without them at ~0.6 (libm fmaf
#      calls): the floor is 20× below the one and 8× above the other, so a loaded machine cannot
#      fail it and a build that lost the flags cannot pass it. It checks the flags, not the speed
#      (that is for prune-bench).
# Exit status: 0 when every step passed, 1 otherwise. It needs git and the Swift toolchain, no
# network. Compiling PruneKit's library modules once more is most of its 5–6 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

die() {
  echo "check-consumer: $*" >&2
  exit 1
}

version_line='s/^ *public static let current = "\([0-9]*\.[0-9]*\.[0-9]*\)"$/\1/p'
version="$(sed -n "$version_line" Sources/PruneFormats/JSON.swift)"
[ -n "$version" ] || die "no 'public static let current = \"X.Y.Z\"' in Sources/PruneFormats/JSON.swift"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || die "$repo is not a git work tree (it clones HEAD)"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "check-consumer: note: only HEAD $(git rev-parse --short HEAD) is checked, not uncommitted changes" >&2
fi

tmp="$(mktemp -d "${TMPDIR:-/tmp}/prunekit-consumer.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

git clone --quiet "$repo" "$tmp/PruneKit"
git -C "$tmp/PruneKit" tag -l | while read -r tag; do git -C "$tmp/PruneKit" tag -d "$tag" >/dev/null; done
git -C "$tmp/PruneKit" tag "$version"
mkdir "$tmp/oracle-consumer"
cp -R Examples/oracle-consumer/Package.swift Examples/oracle-consumer/Sources "$tmp/oracle-consumer/"
echo "check-consumer: PruneKit $version = $(git -C "$tmp/PruneKit" rev-parse --short HEAD);" \
  "building Examples/oracle-consumer against the tag"

# PRUNEKIT_NATIVE_FLAGS is unset: the check is of what a dependent gets by default.
if ! env -u PRUNEKIT_NATIVE_FLAGS PRUNEKIT_GIT_URL="file://$tmp/PruneKit" swift build -c release \
  --package-path "$tmp/oracle-consumer" --scratch-path "$tmp/scratch" \
  --disable-dependency-cache --manifest-cache local >"$tmp/build.log" 2>&1; then
  tail -n 40 "$tmp/build.log" >&2
  die "the consumer did not build against PruneKit $version"
fi
grep -q "resolved at $version" "$tmp/build.log" || die "SwiftPM did not resolve PruneKit at the tag $version"
echo "check-consumer: built in $((SECONDS - start)) s"
bin="$tmp/scratch/release/oracle-consumer"

"$bin" certify | tee "$tmp/certify.txt" || die "oracle-consumer certify failed"
head -n 1 "$tmp/certify.txt" | grep -q "PruneKit $version," || die "the consumer reports a PruneKit other than $version"
[ "$(tail -n 1 "$tmp/certify.txt")" = "PASS" ] || die "oracle-consumer certify did not print PASS"

avx512=1
for flag in avx512f avx512bw avx512cd avx512dq avx512vl; do
  grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | grep -qw "$flag" || avx512=0
done
if [ "$avx512" = 1 ]; then
  head -n 1 "$tmp/certify.txt" | grep -q "micro-kernels AVX-512" \
    || die "this CPU has AVX-512 but the consumer runs the AVX2 kernels: the dependency lost PruneKit's flags"
fi

"$bin" gemm --size 512 --runs 3 | tee "$tmp/gemm.txt"
gflops="$(sed -n 's/.*best \([0-9.]*\) GFLOP\/s.*/\1/p' "$tmp/gemm.txt")"
[ -n "$gflops" ] || die "no GFLOP/s in the gemm output"
awk -v g="$gflops" 'BEGIN { exit !(g >= 5) }' \
  || die "SGEMM 512³ at $gflops GFLOP/s, under 5: the dependency lost its CPU flags (Docs/using-prunekit.md)"
echo "check-consumer: PASS in $((SECONDS - start)) s"
