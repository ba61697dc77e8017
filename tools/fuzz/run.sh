#!/usr/bin/env bash
# Builds the onnxslim CLI and the fuzzer, runs 1,000 seeded bad-input cases against the CLI and prints
# the outcome table (counts per outcome kind and per family, reproducers per failure kind).
# Exit 1 when any failure kind occurred. Extra arguments go to the fuzzer, e.g.
#   tools/fuzz/run.sh --keep-failures /tmp/fuzz-failures --json-out /tmp/fuzz.jsonl
# Environment: CASES (1000), SEED (1), JOBS (2).
set -euo pipefail
cd "$(dirname "$0")/../.."
CASES=${CASES:-1000}
SEED=${SEED:-1}
JOBS=${JOBS:-2}
nice dotnet build src/Cli -c Release -nologo -v quiet
nice dotnet build tools/fuzz -c Release -nologo -v quiet
exec nice dotnet tools/fuzz/bin/Release/net10.0/onnxslim-fuzz.dll --cases "$CASES" --seed "$SEED" --jobs "$JOBS" \
  --cli src/Cli/bin/Release/net10.0/onnxslim.dll "$@"
