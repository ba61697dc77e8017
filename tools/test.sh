#!/usr/bin/env bash
# Builds everything and runs every test project.
# Prints one closing line "N passed, N failed, N skipped" for the whole run.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
dotnet test OnnxSlim.sln -c Release --nologo -v q -m:1 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
awk '/(Passed|Failed)!/ { for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
     END { gsub(",", "", p); printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
rm -f "$log"
exit "$rc"
