#!/usr/bin/env bash
# `make run`: create the shared ClickHouse tables (.cache/clickhouse, for `ingest
# clickhouse-writer` outside a run; a run with `storage` writes its own in its folder) and run
# the scenario. `harness run` starts the local Kafka the scenario asks for (infra.mode: local)
# and stops everything it started, Ctrl-C included; its exit code (contract 7) is this script's.
set -uo pipefail
scenario=${1:-scenarios/ramp_495.yaml}
bin=.venv/bin

"$bin/harness" infra clickhouse || exit 4
"$bin/harness" run "$scenario"
