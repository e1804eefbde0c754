#!/usr/bin/env bash
# `make nightly`: what .github/workflows/nightly-load.yml runs, runnable here.
# 1. harness run scenarios/ci_nightly.yaml into results/nightly/ (it ends with report.html);
# 2. harness compare <that run> baselines/<scenario name>/ when a baseline is stored.
# Exit: the run's code when it is not 0 (a breach: 1 or 2, inconclusive 5, ...), else the
# comparison's (1 regression, 5 not comparable). Without a stored baseline the run alone
# decides and the script says how to store one (harness baseline accept).
set -uo pipefail
scenario=${NIGHTLY_SCENARIO:-scenarios/ci_nightly.yaml}
results=${NIGHTLY_RESULTS:-results/nightly}
bin=.venv/bin

"$bin/harness" infra clickhouse || exit 4
"$bin/harness" run "$scenario" --results "$results"
code=$?
run=$(ls -td "$results"/*/ 2>/dev/null | head -n 1)
run=${run%/}
if [ -z "$run" ]; then
  echo "nightly: no run folder under $results" >&2
  exit "$(( code == 0 ? 4 : code ))"
fi
name=$("$bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run"]["scenario"]["name"])' "$run/summary.json")
baseline="baselines/$name"
compared=0
if [ -f "$baseline/summary.json" ]; then
  "$bin/harness" compare "$run" "$baseline"
  compared=$?
else
  echo "nightly: no baseline at $baseline; store this run as one with: harness baseline accept $run"
fi
echo "nightly: run exit $code, comparison exit $compared, report $run/report.html"
if [ "$code" -ne 0 ]; then exit "$code"; fi
exit "$compared"
