#!/usr/bin/env bash
# Coverage-guided fuzzing of the decoders of hostile input (issue 9): UDP datagrams (JSON and binary events,
# the scene-moved notice), change stream bodies (ZeroMQ/Kafka and UDP framings) and HTTP request bodies.
# The fuzzers are the package in Fuzz/ (see Fuzz/README.md); libFuzzer's runtime comes with the Swift
# toolchain, so nothing is installed.
#
#   scripts/fuzz.sh [options] [FUZZER...]        (default: every fuzzer in Fuzz/corpus)
#
#   --time SECONDS   fuzzing time per fuzzer (default $FUZZ_TIME or 30)
#   --seed N         libFuzzer's -seed (default $FUZZ_SEED or one drawn now; printed either way)
#   --asan           also AddressSanitizer (its own scratch path, .build-fuzz-asan)
#   --merge          add the inputs that found new coverage to Fuzz/corpus (otherwise it is left untouched)
#   --keep-going     do not stop at the first crash: libFuzzer's fork mode with -ignore_crashes, so one run
#                    collects every distinct crash (still exits non-zero if there was one)
#   --jobs N         fork-mode workers with --keep-going (default 1)
#   --no-build       use the fuzzers already built
#
# First every input in Fuzz/regressions/FUZZER/ is replayed (each one a past crash), then each fuzzer runs
# from a temporary copy of Fuzz/corpus/FUZZER plus the regressions. Crash, timeout and out-of-memory inputs
# are kept in $FUZZ_ARTIFACTS (default .build-fuzz/artifacts/FUZZER/). Exits 1 on any crash, trap, hang
# or failed regression.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

time_per_fuzzer=${FUZZ_TIME:-30}
seed=${FUZZ_SEED:-}
asan=0
merge=0
keep_going=0
jobs=1
build=1
fuzzers=()
while [ $# -gt 0 ]; do
    case "$1" in
        --time) time_per_fuzzer=$2; shift 2 ;;
        --seed) seed=$2; shift 2 ;;
        --asan) asan=1; shift ;;
        --merge) merge=1; shift ;;
        --keep-going) keep_going=1; shift ;;
        --jobs) jobs=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
        *) fuzzers+=("$1"); shift ;;
    esac
done
if [ ${#fuzzers[@]} -eq 0 ]; then
    for dir in Fuzz/corpus/*/; do fuzzers+=("$(basename "$dir")"); done
fi
# One seed for the whole run, so that it can be repeated: libFuzzer takes 1 to 2^31-1.
if [ -z "$seed" ]; then seed=$(( ($(date +%s%N) / 1000) % 2147483646 + 1 )); fi

command -v swift >/dev/null || { echo "swift is not on PATH (expected Swift 6.x)" >&2; exit 1; }
toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
if ! ls "$toolchain"/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 \
    && ! ls "$toolchain"/lib/swift/clang/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1; then
    echo "warning: no libclang_rt.fuzzer in the toolchain at $toolchain; the build will say what is missing" >&2
fi

sanitizers=(--sanitize=fuzzer)
scratch=.build-fuzz
if [ "$asan" = 1 ]; then
    sanitizers+=(--sanitize=address)
    scratch=.build-fuzz-asan
fi
if [ "$build" = 1 ]; then
    echo "== building the fuzzers (${sanitizers[*]}) into $scratch"
    started=$(date +%s)
    swift build --package-path Fuzz --scratch-path "$scratch" -c release "${sanitizers[@]}"
    echo "== built in $(( $(date +%s) - started )) s"
fi
bin=$(swift build --package-path Fuzz --scratch-path "$scratch" -c release "${sanitizers[@]}" --show-bin-path)
artifacts_root=${FUZZ_ARTIFACTS:-$repo/.build-fuzz/artifacts}

work=$(mktemp -d "${TMPDIR:-/tmp}/aesel-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Swift's runtime backtracer installs its signal handlers first, and libFuzzer does not replace a handler
# it finds: with it on, a trap kills the fuzzer before libFuzzer saves the input. So it is off while
# fuzzing, and on when an input is replayed, for the crash's stack.
# With AddressSanitizer, Swift's backtracer hangs on a crash (its helper never returns), but libFuzzer then
# prints the stack itself, so it stays off there too.
fuzzing_backtrace=enable=no
replay_backtrace=enable=yes,interactive=no,color=no,sanitize=yes,timeout=20s
[ "$asan" = 1 ] && replay_backtrace=enable=no
stack_lines="Fatal error|runtime failure|invariant failed|ERROR: AddressSanitizer|ERROR: libFuzzer|^ *[0-9]+ .* in [A-Za-z]+ at |^ +#[0-9]+ 0x[0-9a-f]+ in [^ ]*(Aesel|Fuzz|NIO|LLVMFuzzer)"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:symbolize=1}

failed=0
summary=()
for fuzzer in "${fuzzers[@]}"; do
    exe="$bin/$fuzzer"
    [ -x "$exe" ] || { echo "no fuzzer $fuzzer in $bin" >&2; exit 2; }
    echo
    echo "== $fuzzer"
    artifacts="$artifacts_root/$fuzzer"
    mkdir -p "$artifacts" "$work/$fuzzer/corpus"
    cp -r "Fuzz/corpus/$fuzzer/." "$work/$fuzzer/corpus/"

    # 1. Past crashes must not crash again.
    regressions_failed=0
    for input in Fuzz/regressions/"$fuzzer"/*; do
        [ -f "$input" ] || continue
        if SWIFT_BACKTRACE=$replay_backtrace timeout 120 "$exe" "$input" > "$work/$fuzzer/replay.log" 2>&1; then
            cp "$input" "$work/$fuzzer/corpus/regression-$(basename "$input")"
        else
            echo "REGRESSION: $input crashes $fuzzer again:"
            grep -E "$stack_lines" "$work/$fuzzer/replay.log" | cut -c1-400 | head -24 || tail -20 "$work/$fuzzer/replay.log"
            regressions_failed=$((regressions_failed + 1))
        fi
    done

    # 2. Fuzz.
    options=(-max_total_time="$time_per_fuzzer" -seed="$seed" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/" -detect_leaks=0)
    case "$fuzzer" in
        FuzzHTTPBody) options+=(-dict=Fuzz/dictionaries/http.dict -max_len=16384) ;;
        *) options+=(-dict=Fuzz/dictionaries/events.dict -max_len=4200) ;;
    esac
    if [ "$keep_going" = 1 ]; then
        options+=(-fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    fi
    touch "$work/$fuzzer/started"
    echo "$exe ${options[*]} <corpus>"
    set +e
    SWIFT_BACKTRACE=$fuzzing_backtrace "$exe" "${options[@]}" "$work/$fuzzer/corpus" > "$work/$fuzzer/fuzz.log" 2>&1
    status=$?
    set -e
    cp "$work/$fuzzer/fuzz.log" "$artifacts/last-run.log"
    crashes=$(find "$artifacts" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) -newer "$work/$fuzzer/started" 2>/dev/null | wc -l)

    # Executions and speed: the final stats, or in fork mode the last status line.
    executions=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work/$fuzzer/fuzz.log" | grep -oE '[0-9]+$' | tail -1 || true)
    speed=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$work/$fuzzer/fuzz.log" | grep -oE '[0-9]+$' | tail -1 || true)
    if [ -z "$executions" ]; then
        executions=$(grep -oE '^#[0-9]+' "$work/$fuzzer/fuzz.log" | tr -d '#' | tail -1 || true)
        speed=$(grep -oE 'exec/s: [0-9]+' "$work/$fuzzer/fuzz.log" | grep -oE '[0-9]+$' | tail -1 || true)
    fi
    coverage=$(grep -oE 'cov: [0-9]+' "$work/$fuzzer/fuzz.log" | tail -1 | grep -oE '[0-9]+' || true)

    verdict=ok
    if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ] || [ "$regressions_failed" -gt 0 ]; then
        verdict=FAILED
        failed=1
        if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
            echo "$fuzzer found a crash (exit $status); its output:"
            grep -E "Fatal error|runtime failure|invariant failed|ERROR: AddressSanitizer|ERROR: libFuzzer|SUMMARY|Test unit written" "$work/$fuzzer/fuzz.log" | sed -E "s/==[0-9]+== //" | sort | uniq -c | head -40 || true
            echo "inputs kept in $artifacts:"
            find "$artifacts" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) -newer "$work/$fuzzer/started" | sed 's/^/  /'
            # The stack of the first one, replayed with Swift's backtracer.
            first=$(find "$artifacts" -maxdepth 1 -type f -name 'crash-*' -newer "$work/$fuzzer/started" | head -1)
            if [ -n "$first" ]; then
                echo "stack of $first:"
                SWIFT_BACKTRACE=$replay_backtrace timeout 120 "$exe" -timeout=10 "$first" > "$work/$fuzzer/first.log" 2>&1 || true
                grep -E "$stack_lines" "$work/$fuzzer/first.log" | cut -c1-400 | head -30 || true
            fi
            echo "reproduce: $exe <input>; keep it: copy it to Fuzz/regressions/$fuzzer/"
        fi
    fi
    if [ "$merge" = 1 ]; then
        "$exe" -merge=1 "Fuzz/corpus/$fuzzer" "$work/$fuzzer/corpus" > "$work/$fuzzer/merge.log" 2>&1 || true
        grep -E "MERGE-OUTER: [0-9]+ new files" "$work/$fuzzer/merge.log" || true
    fi
    line="$fuzzer: $verdict, seed $seed, ${executions:-?} executions in ${time_per_fuzzer} s (${speed:-?}/s), coverage ${coverage:-?}"
    [ "$regressions_failed" -gt 0 ] && line+=", $regressions_failed regression(s) crash again"
    echo "$line"
    summary+=("$line")
done

echo
echo "== summary (seed $seed; repeat with --seed $seed)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
    echo "fuzzing found crashes (see above)"
    exit 1
fi
echo "no crash"
