package e2e

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// `clank serve --keep-events N` bounds each service's events; deployments
// are all kept.
func TestServeKeepsEventsBounded(t *testing.T) {
	d := startDaemonWith(t, "", "127.0.0.1:0", nil, "--keep-events", "4")
	rt := testdocker.Require(t)
	v1, v2 := testdocker.SampleImage(t, rt, "v1"), testdocker.SampleImage(t, rt, "v2")
	d.ok("service", "create", "web", "--image", v1, "--port", "8080", "--health-path", "/healthz")
	for _, img := range []string{v1, v2, v1} {
		d.ok("deploy", "--service", "web", "--image", img)
	}
	st, err := store.Open(filepath.Join(d.dataDir, "clank.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	ds, err := st.ListDeployments(ctx, "web", 0, 0)
	if err != nil || len(ds) != 3 {
		t.Fatalf("deployments: %d %v, want 3", len(ds), err)
	}
	total := 0
	for _, dep := range ds {
		evs, err := st.Events(ctx, dep.ID)
		if err != nil {
			t.Fatal(err)
		}
		total += len(evs)
	}
	// Three deploys make at least 9 events (created, HEALTH_CHECKING, ACTIVE).
	if total != 4 {
		t.Fatalf("web keeps %d events, want the newest 4", total)
	}
}
