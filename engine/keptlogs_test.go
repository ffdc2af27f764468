package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/store"
)

// keptLog waits until the engine has kept a log for d and returns it whole.
func keptLog(t *testing.T, h *harness, d store.Deployment, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		kept, err := h.eng.KeptLogs(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		if len(kept) > 0 {
			var b strings.Builder
			for _, l := range kept {
				if l.ContainerID != d.ContainerID {
					t.Errorf("#%d's log kept from container %s, it ran %s", d.Number, l.ContainerID, d.ContainerID)
				}
				b.Write(l.Text)
			}
			return b.String()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log kept for #%d within %s", d.Number, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A warm standby removed when its window ends, and the ACTIVE deployment's
// container removed with its service, each keep the tail of their log, their
// shutdown included (the container is stopped before its log is read).
func TestLogsKeptWhenAStandbyAndAServiceGo(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	d1, d2 := warmHistory(t, h, 3*time.Second)
	if kept, _ := h.eng.KeptLogs(ctx, d1); len(kept) != 0 {
		t.Fatalf("#1 kept a log while its container still runs: %q", kept[0].Text)
	}

	log1 := keptLog(t, h, d1, 30*time.Second)
	if !strings.Contains(log1, "sampleapp v1 listening") || !strings.Contains(log1, "sampleapp v1 shutting down") {
		t.Fatalf("#1's kept log:\n%s", log1)
	}
	// The log is kept, then the container goes.
	for deadline := time.Now().Add(10 * time.Second); h.eng.HasContainer(ctx, d1) == nil; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("#1's container is still there")
		}
	}

	if _, err := h.eng.DeleteService(ctx, "web", false); err != nil {
		t.Fatal(err)
	}
	log2 := keptLog(t, h, d2, 10*time.Second)
	if !strings.Contains(log2, "sampleapp v2 listening") || !strings.Contains(log2, "sampleapp v2 shutting down") {
		t.Fatalf("#2's kept log:\n%s", log2)
	}
}
