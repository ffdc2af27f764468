package testdocker

import (
	"errors"
	"slices"
	"testing"
)

func TestLeavesFirst(t *testing.T) {
	// base <- a <- b <- c, a <- d; "outside" is a parent not in the set.
	parent := map[string]string{
		"a": "outside",
		"b": "a",
		"c": "b",
		"d": "a",
		"e": "",
	}
	order := leavesFirst(parent)
	if len(order) != len(parent) {
		t.Fatalf("order %v: want every image once", order)
	}
	pos := func(id string) int { return slices.Index(order, id) }
	for id, p := range parent {
		if _, ours := parent[p]; ours && pos(id) > pos(p) {
			t.Errorf("order %v: %s comes after its parent %s", order, id, p)
		}
	}
}

// Only the engine losing a parent image has a build tried again; a broken
// Dockerfile or a missing engine fails at once.
func TestLostBuildParent(t *testing.T) {
	for msg, want := range map[string]bool{
		"build image x: unknown parent image ID sha256:0123":                      true,
		"build image x: failed to get digest sha256:ab: image not found":          true,
		"build image x: dockerfile parse error line 1: unknown instruction: FORM": false,
		"build image x: Cannot connect to the Docker daemon at unix:///var/run/x": false,
	} {
		if got := LostBuildParent(errors.New(msg)); got != want {
			t.Errorf("LostBuildParent(%q) = %v, want %v", msg, got, want)
		}
	}
}
