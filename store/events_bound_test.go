package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func countEvents(t testing.TB, s *Store, service string) int {
	t.Helper()
	var n int
	if err := s.r.QueryRow(`SELECT COUNT(*) FROM events WHERE service = ?`, service).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Events are bounded per service, the newest kept; deployments never go, and
// another service's events are not touched.
func TestEventsAreBoundedPerService(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	s.SetKeepEvents(5)
	mustCreateService(t, s, "web")
	mustCreateService(t, s, "api")
	for i := range 3 {
		mustDeploy(t, s, "api", fmt.Sprintf("a%d", i)) // one event each
	}
	var last Event
	for i := range 4 {
		d := mustDeploy(t, s, "web", fmt.Sprintf("w%d", i))
		for j := range 5 {
			e, err := s.AddEvent(ctx, Event{DeploymentID: d.ID, Message: fmt.Sprintf("step %d.%d", i, j)})
			if err != nil {
				t.Fatal(err)
			}
			last = e
		}
	}
	if n := countEvents(t, s, "web"); n != 5 {
		t.Fatalf("web keeps %d events, want 5", n)
	}
	if n := countEvents(t, s, "api"); n != 3 {
		t.Fatalf("api keeps %d events, want its 3", n)
	}
	evs, err := s.Events(ctx, "w3")
	if err != nil || len(evs) != 5 || evs[4].ID != last.ID || evs[0].Message != "step 3.0" {
		t.Fatalf("the newest deployment's events: %v %v, want its last five", evs, err)
	}
	if evs, err := s.Events(ctx, "w0"); err != nil || len(evs) != 0 {
		t.Fatalf("the oldest deployment: %v %v, want it kept with no events", evs, err)
	}
	if n, _ := s.CountDeployments(ctx, "web"); n != 4 {
		t.Fatalf("web has %d deployments, want all 4", n)
	}

	// A larger bound trims in batches of keep/16: never more than that over.
	s.SetKeepEvents(64)
	for range 200 {
		if _, err := s.AddEvent(ctx, Event{DeploymentID: "w3", Message: "batch"}); err != nil {
			t.Fatal(err)
		}
		if n := countEvents(t, s, "web"); n > 64+4 {
			t.Fatalf("web holds %d events with a bound of 64", n)
		}
	}
	if n := countEvents(t, s, "web"); n < 64 {
		t.Fatalf("web holds %d events, fewer than its bound of 64", n)
	}

	s.SetKeepEvents(-1)
	before := countEvents(t, s, "web")
	for range 10 {
		if _, err := s.AddEvent(ctx, Event{DeploymentID: "w3", Message: "more"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := countEvents(t, s, "web"); n != before+10 {
		t.Fatalf("with no bound web keeps %d events, want %d", n, before+10)
	}
}

// The bound's cost on each event: an insert into a service already at the
// default bound, against the same insert with no bound, alternating one of
// each so that both see the same load; reported as µs per insert and ratio.
func BenchmarkAddEventBounded(b *testing.B) {
	ctx := context.Background()
	stores := make([]*Store, 2)
	for i, keep := range []int{-1, DefaultKeepEvents} {
		s, _ := openTest(b)
		mustCreateService(b, s, "web")
		d := mustDeploy(b, s, "web", "d1")
		for range DefaultKeepEvents {
			if _, err := s.AddEvent(ctx, Event{DeploymentID: d.ID, Message: "fill"}); err != nil {
				b.Fatal(err)
			}
		}
		s.SetKeepEvents(keep)
		stores[i] = s
	}
	var spent [2]time.Duration
	for b.Loop() {
		for i, s := range stores {
			start := time.Now()
			if _, err := s.AddEvent(ctx, Event{DeploymentID: "d1", Message: "step"}); err != nil {
				b.Fatal(err)
			}
			spent[i] += time.Since(start)
		}
	}
	if n := countEvents(b, stores[1], "web"); n < DefaultKeepEvents || n > DefaultKeepEvents+DefaultKeepEvents/16 {
		b.Fatalf("the bounded store keeps %d events, want %d and at most a batch more", n, DefaultKeepEvents)
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(b.N) }
	b.ReportMetric(per(spent[0]), "unbounded-µs/op")
	b.ReportMetric(per(spent[1]), "bounded-µs/op")
	b.ReportMetric(float64(spent[1])/float64(spent[0]), "bounded/unbounded")
}
