package ssh_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui/internal/fakebackend"
)

// fakeWorld is the SSH dashboard over the in-memory fake, for the fan-out
// benchmark alone: it measures how fast a status change reaches 50 screens,
// which needs status changes faster than a real deployment makes them. The
// behaviour (a real daemon's change on every screen) is tested by
// TestManySessionsSeeAStatusChange.
type fakeWorld struct {
	*world
	b *fakebackend.Backend
}

func startServer(t testing.TB, dir string, b *fakebackend.Backend) *fakeWorld {
	t.Helper()
	return &fakeWorld{world: serveOn(t, dir, b), b: b}
}

func demo() *fakebackend.Backend {
	b := fakebackend.New()
	b.AddService(api.Service{Name: "web", Image: "nginx:1.26", Port: 8080})
	b.AddService(api.Service{Name: "worker", Image: "acme/worker", Port: 9000})
	b.AddHistory("web", 5)
	return b
}

// BenchmarkStatusFanout measures how long a status change takes to reach the
// screens of 50 SSH sessions: from the backend publishing it to the new
// status drawn by every session's client. Goal: < 50 ms.
func BenchmarkStatusFanout(b *testing.B) {
	const sessions = 50
	dir := b.TempDir()
	k := newKey(b)
	writeAuthorizedKeys(b, dir, authLine(k, ""))
	w := startServer(b, dir, demo())
	terms := make([]*term, sessions)
	for i := range terms {
		terms[i] = w.open(b, "bench", k)
	}
	for _, tm := range terms {
		tm.waitFor("worker")
	}
	for deadline := time.Now().Add(waitWithin); w.srv.EventSubscribers() < sessions; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d sessions subscribed", w.srv.EventSubscribers(), sessions)
		}
	}
	if _, err := w.b.Act(context.Background(), api.ActionRequest{Kind: "deploy", Service: "web"}); err != nil {
		b.Fatal(err)
	}
	for _, tm := range terms {
		tm.waitFor("DEPLOYING")
	}
	statuses := []string{"HEALTH_CHECKING", "DEPLOYING"}
	var worst time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		status := statuses[i%2]
		offsets := make([]int, sessions)
		for j, tm := range terms {
			offsets[j] = tm.size()
		}
		start := time.Now()
		w.b.SetStatus("web", 6, status, "")
		for j, tm := range terms {
			for !strings.Contains(tm.since(offsets[j]), status) {
				select {
				case <-tm.drawn:
				case <-time.After(5 * time.Second):
					b.Fatalf("session %d never showed %s", j, status)
				}
			}
		}
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
}

// BenchmarkIdleSessions measures what 50 open, idle dashboard sessions cost
// the server: CPU time per second of wall time (the renderer's frame ticker
// runs whether or not anything changed).
func BenchmarkIdleSessions(b *testing.B) {
	const sessions = 50
	dir := b.TempDir()
	k := newKey(b)
	writeAuthorizedKeys(b, dir, authLine(k, ""))
	w := startServer(b, dir, demo())
	for range sessions {
		w.open(b, "bench", k).waitFor("worker")
	}
	for deadline := time.Now().Add(waitWithin); w.srv.EventSubscribers() < sessions; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d sessions subscribed", w.srv.EventSubscribers(), sessions)
		}
	}
	var cpu, wall time.Duration
	for b.Loop() {
		start, cpu0 := time.Now(), cpuTime()
		time.Sleep(time.Second) // the cost of nothing happening, for a second
		cpu += cpuTime() - cpu0
		wall += time.Since(start)
	}
	b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "%core")
}
