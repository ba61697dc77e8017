#!/usr/bin/env bash
# Builds everything and runs every test project.
# Prints one closing line "N passed, N failed, N skipped" for the whole run, and says so when a test project did not run.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
dotnet test OnnxSlim.sln -c Release --nologo -v q -m:1 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
# One result line per test project that ran; a project that does not compile reports none, so the closing line says how
# many of the solution's test projects ran (a count of only those that ran read like a clean pass).
projects=$(ls tests/*/*.Tests.csproj | wc -l)
awk -v projects="$projects" -v rc="$rc" '/(Passed|Failed)!/ { ran++; for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1); if ($i == "Skipped:") s += $(i+1) } }
     END { gsub(",", "", p); printf "%d passed, %d failed, %d skipped", p, f, s
           if (ran < projects) printf "; only %d of %d test projects ran (see the build errors above)", ran, projects
           else if (rc != 0 && f == 0) printf "; the run failed (exit %d, see above)", rc
           printf "\n" }' "$log"
rm -f "$log"
exit "$rc"
