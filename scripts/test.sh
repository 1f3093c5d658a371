#!/usr/bin/env bash
# Runs every test: unit tests, the store contract tests against SQLite and a throwaway PostgreSQL, and the
# integration tests, which start real `aesel serve` processes on loopback. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The integration tests run the `aesel` executable, so build it with the tests.
swift build --build-tests

# The PostgreSQL contract tests need a server: start one on a free loopback port, always stopped on exit.
free_port() {
    local port
    for port in $(seq 55432 55531); do
        # A refused connection means nothing listens there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "no free port in 55432-55531" >&2
    exit 1
}
postgres_dir=$(mktemp -d "${TMPDIR:-/tmp}/aesel-postgres.XXXXXX")
trap './scripts/postgres.sh stop "$postgres_dir" || true' EXIT
AESEL_TEST_POSTGRES_URL=$(./scripts/postgres.sh start "$postgres_dir" "$(free_port)")
export AESEL_TEST_POSTGRES_URL

# The Kafka change stream tests need a Kafka-protocol broker (Tansu) and librdkafka 2.16 at run time.
kafka_dir=$(mktemp -d "${TMPDIR:-/tmp}/aesel-kafka.XXXXXX")
trap './scripts/postgres.sh stop "$postgres_dir" || true; ./scripts/kafka.sh stop "$kafka_dir" || true' EXIT
AESEL_TEST_KAFKA=$(./scripts/kafka.sh start "$kafka_dir" "$(free_port)")
export AESEL_TEST_KAFKA
# The broker-loss test kills and restarts a broker of its own.
export AESEL_TEST_TANSU="$kafka_dir/tansu"
export LD_LIBRARY_PATH="$kafka_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# The cluster tests run Adrestia with etcd discovery: a throwaway etcd (Debian's etcd-server).
etcd_dir=$(mktemp -d "${TMPDIR:-/tmp}/aesel-etcd.XXXXXX")
trap './scripts/postgres.sh stop "$postgres_dir" || true; ./scripts/kafka.sh stop "$kafka_dir" || true; ./scripts/etcd.sh stop "$etcd_dir" || true' EXIT
AESEL_TEST_ETCD=$(./scripts/etcd.sh start "$etcd_dir" "$(free_port)")
export AESEL_TEST_ETCD

# The HTTP APIs' descriptions must be valid OpenAPI documents (OpenAPITests checks they match the routes).
python3 -m openapi_spec_validator --help >/dev/null 2>&1 || python3 -m pip install -q openapi-spec-validator
python3 -m openapi_spec_validator docs/openapi.yaml docs/adrestia.yaml

# The in-process tests first, then the integration tests: these wait for child processes on threads of
# Swift's shared pool, which the in-process servers' own tasks need. At most three integration tests run
# at once: each starts up to five processes, and with all sixty at once on two cores the servers miss
# their own deadlines (health probes, 300 ms receives), which the tests rightly count as failures.
swift test --skip-build --skip IntegrationTests
swift test --skip-build --filter IntegrationTests --experimental-maximum-parallelization-width 3

# The in-process tests again under ThreadSanitizer, in a build of their own (the integration tests run
# the aesel executable, whose races these same modules hold).
swift build --build-tests --sanitize=thread --scratch-path .build/tsan
TSAN_OPTIONS="halt_on_error=1" swift test --skip-build --sanitize=thread --scratch-path .build/tsan --skip IntegrationTests

# Hostile input (docs/security.md): every past fuzzer crash replayed, then libFuzzer over the decoders for a
# fixed budget; schemathesis against both HTTP specs on real servers (once more on the PostgreSQL store,
# which refuses what SQLite would store).
./scripts/fuzz.sh --time "${FUZZ_TIME:-30}"
./scripts/schemathesis.sh .build/debug/aesel
SCHEMATHESIS_STORE="$AESEL_TEST_POSTGRES_URL" SCHEMATHESIS_GATEWAY_EXAMPLES=0 \
    ./scripts/schemathesis.sh .build/debug/aesel
