#!/usr/bin/env bash
# Hostile input against the real servers (issue 9): schemathesis generates requests from the specs and
# checks that no answer is a 5xx, that every status code and body is the one the spec documents, that
# requests the spec calls valid are not refused, that no request hangs, and that the servers are still up
# afterwards.
#
#   scripts/schemathesis.sh [AESEL]      AESEL: the aesel binary (or $AESEL; default .build/debug/aesel)
#
# It starts, on free loopback ports with throwaway data folders, and always stops by PID on exit:
#   - `aesel serve`, tested against docs/openapi.yaml;
#   - `aesel adrestia --discovery embedded` with one `aesel pair` announcing to it, tested against
#     docs/adrestia.yaml, and then (the gateway) against docs/openapi.yaml, which it forwards to the pair.
#     Both run protected: a token secret, a cluster secret and an admin API key made for the run, which
#     every request to them carries (X-API-Key).
# Then a few requests schemathesis never makes (NUL in paths and queries, a TRACE with a body) must not
# answer 5xx either. Exits non-zero on any failure, and keeps the logs and reports of a failed run.
#
# Environment:
#   SCHEMATHESIS_SEED=1               the seed (schemathesis --seed; same seed and budget, same requests)
#   SCHEMATHESIS_MAX_EXAMPLES=6       fuzzed cases per operation (serve and Adrestia's own routes; the
#                                     coverage phase's boundary cases come on top)
#   SCHEMATHESIS_GATEWAY_EXAMPLES=3   the same for the gateway run; 0 skips it
#   SCHEMATHESIS_WORKERS=1            concurrent requests (more than 1 trips, now and then, over a thread-safety
#                                     bug of Hypothesis's error reporting, which schemathesis counts as an error)
#   SCHEMATHESIS_STORE=postgres://... run the servers on this throwaway PostgreSQL store, not SQLite (it
#                                     refuses NUL: the probes' NUL cases answer 500 if a route lets one in)
#   SCHEMATHESIS_KEEP=1               keep the logs and reports even when everything passed
set -euo pipefail
cd "$(dirname "$0")/.."

schemathesis_version=4.32.5
aesel=${1:-${AESEL:-.build/debug/aesel}}
seed=${SCHEMATHESIS_SEED:-1}
examples=${SCHEMATHESIS_MAX_EXAMPLES:-6}
gateway_examples=${SCHEMATHESIS_GATEWAY_EXAMPLES:-3}
workers=${SCHEMATHESIS_WORKERS:-1}
[ -x "$aesel" ] || { echo "schemathesis.sh: no aesel binary at $aesel (build it, or pass its path)" >&2; exit 2; }
aesel=$(cd "$(dirname "$aesel")" && pwd)/$(basename "$aesel")

installed=$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)
if [ "$installed" != "$schemathesis_version" ]; then
    echo "schemathesis.sh: installing schemathesis $schemathesis_version from PyPI" >&2
    python3 -m pip install -q "schemathesis==$schemathesis_version" >&2
fi

# On tmpfs when there is one: the stores' fsyncs cost nothing there (and the folder goes unless the run
# failed).
tmp=${TMPDIR:-/tmp}
[ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ] && tmp=/dev/shm
work=$(mktemp -d "$tmp/aesel-schemathesis.XXXXXX")
pids=()
running=
failed=0
started=$SECONDS

stop_servers() {
    local pid i
    # Newest first: the pair before Adrestia. SIGTERM is a graceful shutdown; SIGKILL after 10 s.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}

on_exit() {
    local status=$?
    if [ -n "$running" ]; then kill -TERM "$running" 2>/dev/null || true; wait "$running" 2>/dev/null || true; fi
    stop_servers
    if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ -n "${SCHEMATHESIS_KEEP:-}" ]; then
        echo "schemathesis.sh: logs and reports kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

fail() {
    echo "schemathesis.sh: FAIL: $*" >&2
    failed=1
}

# Starts `aesel ARGS...` (NAME names its log files) and sets `address` to its ready line's HTTP address,
# host:port. The servers pick free ports themselves (port 0) and print them: no race for a port. (Not in a
# command substitution: the PID must reach this shell's list.)
start() {
    local name=$1 pid line
    shift
    "$aesel" "$@" >"$work/$name.out" 2>"$work/$name.log" &
    pid=$!
    pids+=("$pid")
    echo "$pid" >"$work/$name.pid"
    for _ in $(seq 600); do
        line=$(grep -m1 '^aesel ready' "$work/$name.out" 2>/dev/null || true)
        if [ -n "$line" ]; then
            address=$(sed -n 's/.* http=\([^ ]*\).*/\1/p' <<<"$line")
            return
        fi
        kill -0 "$pid" 2>/dev/null || { echo "schemathesis.sh: $name exited at start:" >&2; tail -20 "$work/$name.log" >&2; exit 1; }
        sleep 0.1
    done
    echo "schemathesis.sh: $name printed no ready line in 60 s" >&2
    exit 1
}

# GET URL: prints the status code and the body (0 and the error when it cannot connect), within 5 s.
# With the run's admin key, where there is one.
http_get() {
    python3 - "$1" <<'EOF'
import os, sys, urllib.request, urllib.error
try:
    request = urllib.request.Request(sys.argv[1], headers={"X-API-Key": os.environ["AESEL_ADMIN_KEY"]} if os.environ.get("AESEL_ADMIN_KEY") else {})
    with urllib.request.urlopen(request, timeout=5) as r:
        print(r.status, r.read().decode("utf-8", "replace"))
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode("utf-8", "replace"))
except Exception as e:
    print(0, e)
EOF
}

# Runs schemathesis on SPEC against the server at URL; LABEL names its reports. Extra arguments follow.
# A run that does not end within LIMIT seconds is a hang.
run_schemathesis() {
    local label=$1 spec=$2 url=$3 limit=$4 status=0
    shift 4
    echo "schemathesis.sh: $label: $spec against $url (seed $seed)" >&2
    # In the background, waited for: a signal to this script then stops it at once (see on_exit).
    timeout --kill-after=10 "$limit" python3 -m schemathesis.cli --config-file scripts/schemathesis.toml run "$spec" \
        --url "$url" --seed "$seed" --workers "$workers" --no-color \
        --request-timeout 10 --max-response-time 5 \
        --report junit,ndjson --report-dir "$work/reports-$label" "$@" >"$work/$label.txt" 2>&1 &
    running=$!
    wait "$running" || status=$?
    running=
    if [ "$status" -ne 0 ]; then
        tail -n 80 "$work/$label.txt" >&2
        if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
            fail "$label: schemathesis did not finish in $limit s (a hang?)"
        else
            fail "$label: schemathesis found failures (exit $status; $work/$label.txt)"
        fi
    fi
    # Every response recorded in the run's events, and how many were 5xx (none, unless a failure says so).
    python3 - "$label" "$work/reports-$label" <<'EOF' >&2 || true
import glob, json, sys
requests = server_errors = 0
for path in glob.glob(sys.argv[2] + "/*.ndjson"):
    for line in open(path):
        event = json.loads(line)
        for interaction in event.get("ScenarioFinished", {}).get("recorder", {}).get("interactions", {}).values():
            requests += 1
            response = interaction.get("response") or {}
            server_errors += response.get("status_code", 0) >= 500
print(f"schemathesis.sh: {sys.argv[1]}: {requests} requests, {server_errors} answered 5xx")
EOF
}

# Requests schemathesis does not generate: NUL in paths and queries (refused before any store sees them),
# a 20,000-byte path, methods no route has. None may answer 5xx. `METHOD URL [BODY]` a line.
probe() {
    local label=$1 requests
    requests=$(cat)
    PROBES=$requests python3 - "$label" <<'EOF'
import os, sys, http.client, urllib.parse
bad = 0
for line in os.environ["PROBES"].splitlines():
    parts = line.split(" ", 2)
    if len(parts) < 2:
        continue
    method, url = parts[0], parts[1]
    body = parts[2].encode() if len(parts) > 2 else None
    u = urllib.parse.urlsplit(url)
    try:
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        headers = {"Content-Type": "application/json"} if body else {}
        if os.environ.get("AESEL_ADMIN_KEY"):
            headers["X-API-Key"] = os.environ["AESEL_ADMIN_KEY"]
        c.request(method, u.path + ("?" + u.query if u.query else ""), body=body, headers=headers)
        r = c.getresponse()
        text = r.read().decode("utf-8", "replace")
        status = r.status
    except Exception as e:
        status, text = 0, repr(e)
    if status == 0 or status >= 500:
        bad += 1
        print(f"schemathesis.sh: {sys.argv[1]}: {method} {url[:120]} -> {status} {text[:300]}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

# The one-process server.
store=()
[ -n "${SCHEMATHESIS_STORE:-}" ] && store=(--store "$SCHEMATHESIS_STORE")
start serve serve --host 127.0.0.1 --http-port 0 --udp-port 0 --data "$work/serve-data" "${store[@]}"
serve=$address

# The cluster's credentials (protected mode): secrets and an admin key made for this run.
umask 077
"$aesel" secret >"$work/token.secret"
"$aesel" secret >"$work/cluster.secret"
AESEL_ADMIN_KEY=$("$aesel" api-key --name schemathesis --role admin --api-keys-file "$work/api-keys.json")
export AESEL_ADMIN_KEY
credentials=(--token-secret-file "$work/token.secret" --cluster-secret-file "$work/cluster.secret" --api-keys-file "$work/api-keys.json")

# Adrestia and one pair on a shared SQLite data folder (or the PostgreSQL store). Generous health settings: a pair starved of CPU by
# the fuzzing must not be declared down (its scenes would answer 503).
start adrestia adrestia --host 127.0.0.1 --http-port 0 --data "$work/cluster-data" "${store[@]}" "${credentials[@]}" --discovery embedded \
    --probe-interval 100 --misses 20 --cross-region-failover
adrestia=$address
start pair pair --host 127.0.0.1 --http-port 0 --udp-port 0 --data "$work/cluster-data" "${store[@]}" "${credentials[@]}" \
    --discovery "http://$adrestia" --pair-id schemathesis-1 --region schemathesis
pair=$address
for _ in $(seq 300); do
    pairs=$(http_get "http://$adrestia/v1/pairs")
    [[ $pairs == *'"healthy":true'* ]] && break
    sleep 0.1
done
[[ $pairs == *'"healthy":true'* ]] || { echo "schemathesis.sh: the pair never became healthy: $pairs" >&2; exit 1; }

# The checks are in scripts/schemathesis.toml: no 5xx; documented status codes, content types and bodies;
# valid requests accepted and invalid ones refused.
run_schemathesis serve docs/openapi.yaml "http://$serve" 240 --max-examples "$examples"
run_schemathesis adrestia docs/adrestia.yaml "http://$adrestia" 120 --max-examples "$examples" --header "X-API-Key: $AESEL_ADMIN_KEY"
if [ "$gateway_examples" -gt 0 ]; then
    # Through the gateway, answers are the pair's, plus Adrestia's own 403, 502 and 503 (docs/adrestia.yaml,
    # which openapi.yaml does not list): every check but the status codes.
    run_schemathesis gateway docs/openapi.yaml "http://$adrestia" 180 \
        --exclude-checks status_code_conformance --max-examples "$gateway_examples" --header "X-API-Key: $AESEL_ADMIN_KEY"
fi

AESEL_ADMIN_KEY= probe serve <<EOF || fail "serve answered 5xx or nothing to a probe"
GET http://$serve/v1/scene/a%00b
DELETE http://$serve/v1/scene/a%00b
PUT http://$serve/v1/scene/cache/a%00b?moved=true
GET http://$serve/v1/object/a%00b
GET http://$serve/v1/property/a%00b
GET http://$serve/v1/object/x/lock?device=a%00b
PUT http://$serve/v1/scene/a/asset/a%00b
GET http://$serve/v1/scene/a%00b/object/x
TRACE http://$serve/v1/object {}
PATCH http://$serve/v1/scene/a {}
GET http://$serve/v1/scene/$(printf 'k%.0s' $(seq 20000))
EOF
probe adrestia <<EOF || fail "Adrestia answered 5xx or nothing to a probe"
GET http://$adrestia/cluster/a%00b
GET http://$adrestia/v1/scene/a%00b/endpoint
POST http://$adrestia/v1/scene/a%00b/register {}
PUT http://$adrestia/v1/pairs/a%00b {}
TRACE http://$adrestia/v1/object {}
PATCH http://$adrestia/v1/scene/a {}
EOF

# Still up: every process alive and healthy.
for name in serve adrestia pair; do
    kill -0 "$(cat "$work/$name.pid")" 2>/dev/null || fail "$name died (log: $work/$name.log)"
done
for address in "$serve" "$adrestia" "$pair"; do
    answer=$(http_get "http://$address/health")
    [ "${answer%% *}" = 200 ] || fail "http://$address/health answered: $answer"
done
echo "schemathesis.sh: $((SECONDS - started)) s" >&2
[ "$failed" -eq 0 ] || exit 1
echo "schemathesis.sh: passed (schemathesis $schemathesis_version, seed $seed)" >&2
