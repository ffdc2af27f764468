package api

import (
	"testing"
	"time"
)

func TestKeptLogHeaderReadsBack(t *testing.T) {
	at := time.Date(2026, 11, 29, 20, 14, 3, 0, time.UTC)
	for _, cut := range []bool{false, true} {
		line := KeptLogHeader("3f2a1b9c0d1e99887766", at, cut)
		id, removed, ok := ParseKeptLogHeader(line)
		if !ok || id != "3f2a1b9c0d1e" || !removed.Equal(at) {
			t.Fatalf("ParseKeptLogHeader(%q) = %q, %v, %v", line, id, removed, ok)
		}
	}
	if _, _, ok := ParseKeptLogHeader("2026/11/29 20:14:03 GET /"); ok {
		t.Fatal("an app's line read as a header")
	}
}

func TestSplitLogTimestamp(t *testing.T) {
	for _, tc := range []struct {
		line, rest string
		ok         bool
	}{
		{"2026-11-29T20:14:03.123456789Z GET /", "GET /", true},
		{"2026-11-29T20:14:03Z x", "x", true},
		{"GET / 200", "GET / 200", false},
		{"-- kept from removed container abc, removed 2026-11-29 20:14:03 UTC --", "-- kept from removed container abc, removed 2026-11-29 20:14:03 UTC --", false},
		{"2026-13-99T00:00:00Z bad", "2026-13-99T00:00:00Z bad", false},
		{"", "", false},
	} {
		_, rest, ok := SplitLogTimestamp(tc.line)
		if rest != tc.rest || ok != tc.ok {
			t.Errorf("SplitLogTimestamp(%q) = %q, %v; want %q, %v", tc.line, rest, ok, tc.rest, tc.ok)
		}
	}
}
