package engine

import (
	"testing"
	"time"

	"github.com/clank-dev/clank/store"
)

// The 5xx rule of the watch: the ratio over the last Watch5xxSpan, counted
// only once Watch5xxMin answers are in, across every backend of the
// deployment, and a backend the router began counting again (a restarted
// container) does not count backwards.
func TestWatch5xxRatio(t *testing.T) {
	const a, b = "127.0.0.1:1", "127.0.0.1:2"
	answers := func(ok, errs uint64) [5]uint64 { return [5]uint64{1: ok, 4: errs} }
	type tick struct {
		after  time.Duration // since the cutover
		counts map[string][5]uint64
		trips  bool
	}
	for _, tc := range []struct {
		name  string
		ratio float64
		ticks []tick
	}{
		{"all 5xx, fewer than the minimum", 0.5, []tick{
			{time.Second, map[string][5]uint64{a: answers(0, Watch5xxMin-1)}, false},
		}},
		{"all 5xx, the minimum", 0.5, []tick{
			{time.Second, map[string][5]uint64{a: answers(0, Watch5xxMin-1)}, false},
			{2 * time.Second, map[string][5]uint64{a: answers(0, Watch5xxMin)}, true},
		}},
		{"under the ratio", 0.5, []tick{
			{time.Second, map[string][5]uint64{a: answers(60, 59)}, false},
		}},
		{"at the ratio, across two backends", 0.5, []tick{
			{time.Second, map[string][5]uint64{a: answers(20, 0), b: answers(0, 20)}, true},
		}},
		{"rule off", 0, []tick{
			{time.Second, map[string][5]uint64{a: answers(0, 100)}, false},
		}},
		{"old 5xx fall out of the span", 0.5, []tick{
			// Counted from the start, each later tick would trip.
			{time.Second, map[string][5]uint64{a: answers(0, 15)}, false},
			{Watch5xxSpan + 2*time.Second, map[string][5]uint64{a: answers(5, 20)}, false},  // 10 in the span
			{Watch5xxSpan + 3*time.Second, map[string][5]uint64{a: answers(16, 29)}, false}, // 30, 14 of them 5xx
		}},
		{"a restarted backend counts from zero again", 0.5, []tick{
			{time.Second, map[string][5]uint64{a: answers(100, 0)}, false},
			{2 * time.Second, map[string][5]uint64{a: answers(0, 15)}, false}, // 115 answers, 15 of them 5xx
			{3 * time.Second, map[string][5]uint64{a: answers(0, 120)}, true}, // 220, 120
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cutover := time.Now()
			p := store.DefaultPolicy()
			p.Watch5xx = tc.ratio
			w := newWatch(p, cutover.Add(time.Hour))
			w.samples[0].at = cutover
			for i, tk := range tc.ticks {
				reason := w.add(cutover.Add(tk.after), tk.counts)
				if (reason != "") != tk.trips {
					t.Fatalf("tick %d (%v): trip %q, want a trip: %v", i, tk.counts, reason, tk.trips)
				}
			}
		})
	}
}
