package store

import (
	"context"
	"fmt"
	"testing"
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

	s.SetKeepEvents(-1)
	for range 10 {
		if _, err := s.AddEvent(ctx, Event{DeploymentID: "w3", Message: "more"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := countEvents(t, s, "web"); n != 15 {
		t.Fatalf("with no bound web keeps %d events, want 15", n)
	}
}

// The bound's cost on each event: against the same insert with no bound,
// both on a service already at the default bound.
func BenchmarkAddEventBounded(b *testing.B) {
	for _, keep := range []int{-1, DefaultKeepEvents} {
		b.Run(fmt.Sprintf("keep=%d", keep), func(b *testing.B) {
			s, _ := openTest(b)
			ctx := context.Background()
			mustCreateService(b, s, "web")
			d := mustDeploy(b, s, "web", "d1")
			for range DefaultKeepEvents {
				if _, err := s.AddEvent(ctx, Event{DeploymentID: d.ID, Message: "fill"}); err != nil {
					b.Fatal(err)
				}
			}
			s.SetKeepEvents(keep)
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.AddEvent(ctx, Event{DeploymentID: d.ID, Message: "step"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
