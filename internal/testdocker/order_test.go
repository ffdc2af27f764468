package testdocker

import (
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
