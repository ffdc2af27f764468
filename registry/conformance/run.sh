#!/usr/bin/env bash
# Runs the OCI distribution-spec conformance suite (fetched through the Go
# module proxy at a pinned version) against the embedded Clank registry on
# 127.0.0.1, and fails if any check listed in baseline.txt stops passing.
#
#   registry/conformance/run.sh              # check against the baseline
#   UPDATE=1 registry/conformance/run.sh     # rewrite baseline.txt from this run
#   RESULTS_DIR=out registry/conformance/run.sh   # keep junit.xml, results.yaml, report.html
set -euo pipefail
cd "$(dirname "$0")/../.."
export CLANK_CONFORMANCE=1
if [ "${UPDATE:-}" = 1 ]; then export CLANK_CONFORMANCE_UPDATE=1; fi
if [ -n "${RESULTS_DIR:-}" ]; then
	mkdir -p "$RESULTS_DIR"
	CLANK_CONFORMANCE_RESULTS="$(cd "$RESULTS_DIR" && pwd)"
	export CLANK_CONFORMANCE_RESULTS
fi
exec go test -count=1 -timeout 15m -run '^TestConformance$' -v ./registry/conformance/
