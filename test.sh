#!/usr/bin/env bash
# Clank's tests: every package, against the Docker engine on this machine
# (tests that need it fail rather than skip when CLANK_REQUIRE_DOCKER=1), with
# the race detector on the packages that run goroutines.
set -euo pipefail
cd "$(dirname "$0")"
export CLANK_REQUIRE_DOCKER="${CLANK_REQUIRE_DOCKER:-1}"
race_pkgs="./engine/... ./ui/... ./internal/pubsub/..."
# The engine's tests drive real deployments one after another: about 8 minutes
# on a quiet 2-core machine, over 20 when other builds share it. The timeout is
# for a test that hangs, not a slow machine.
go test -race -count=1 -timeout 45m $race_pkgs "$@"
others=$(go list ./... | grep -v -e /engine -e /ui -e /internal/pubsub)
go test -count=1 -timeout 45m $others "$@"
