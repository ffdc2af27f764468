// Package conformance runs the OCI distribution-spec conformance suite
// against the embedded Clank registry and holds the baseline of checks that
// pass: run.sh (or CLANK_CONFORMANCE=1 go test ./registry/conformance/) fails
// when a check in baseline.txt stops passing. serve/ runs the registry alone.
package conformance
