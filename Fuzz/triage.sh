#!/usr/bin/env bash
# Groups crash inputs by cause: replays each with Swift's backtracer and prints, per distinct cause (the
# failure message and the first frames in Aesel's code), how many inputs have it and the shortest one.
#   Fuzz/triage.sh FUZZER INPUT...      (e.g. Fuzz/triage.sh FuzzDatagram .build-fuzz/artifacts/FuzzDatagram/crash-*)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzzer=$1
shift
bin=$(swift build --package-path Fuzz --scratch-path "${FUZZ_SCRATCH:-.build-fuzz}" -c release --sanitize=fuzzer --show-bin-path)
declare -A count shortest
for input in "$@"; do
    trace=$(SWIFT_BACKTRACE=enable=yes,interactive=no,color=no,sanitize=yes "$bin/$fuzzer" "$input" 2>&1 || true)
    message=$(grep -oE "(Fatal error: .*|Swift runtime failure: [^*]*|ERROR: AddressSanitizer: [a-z-]+|ERROR: libFuzzer: [a-z -]+)" <<<"$trace" | head -1 | cut -c1-160)
    frames=$(grep -E " in $fuzzer at .*/(AeselWire|AeselModel|FuzzHTTPBody|checkouts)/" <<<"$trace" | grep -v "FuzzSupport" | head -3 | sed -E 's/.* 0x[0-9a-f]+ //; s/ in '"$fuzzer"' at / @ /; s|/work/[^ ]*/Sources/||; s|/work/[^ ]*/checkouts/||' | tr '\n' ';')
    cause="$message | $frames"
    count[$cause]=$(( ${count[$cause]:-0} + 1 ))
    if [ -z "${shortest[$cause]:-}" ] || [ "$(stat -c %s "$input")" -lt "$(stat -c %s "${shortest[$cause]}")" ]; then
        shortest[$cause]=$input
    fi
done
for cause in "${!count[@]}"; do
    echo "${count[$cause]} input(s): $cause"
    echo "    shortest: ${shortest[$cause]} ($(stat -c %s "${shortest[$cause]}") bytes): $(head -c 300 "${shortest[$cause]}" | cat -v)"
done
