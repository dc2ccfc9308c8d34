#!/usr/bin/env bash
# A long run of one fuzz target: fuzz/run.sh TARGET SECONDS
# Starts from the seeds in fuzz/corpus/TARGET (read only) and a scratch corpus of its own, so
# the repository keeps its small seeds; an input that crashes is written to
# fuzz/artifacts/TARGET/ (make it a regression test in the normal suite, and a seed).
# Bounds: 5 s per input, 2 GiB of RSS, no single allocation above 256 MiB.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET SECONDS}
seconds=${2:?usage: fuzz/run.sh TARGET SECONDS}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cargo fuzz run --sanitizer none "$target" "$scratch" "corpus/$target" -- \
  -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -malloc_limit_mb=256 -print_final_stats=1
