package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
)

// `clank service delete`: the containers and the route go, the history
// stays (and comes back with the name); --purge deletes it and the images
// no other service needs.
func TestCLIServiceDelete(t *testing.T) {
	d := startDaemon(t, "", "127.0.0.1:0")
	rt := testdocker.Require(t)
	v1, v2 := testdocker.SampleImage(t, rt, "v1"), testdocker.SampleImage(t, rt, "v2")
	d.ok("service", "create", "web", "--image", v1, "--port", "8080", "--health-path", "/healthz")
	d.ok("deploy", "--service", "web")
	d.ok("deploy", "--service", "web", "--image", v2)

	out := d.ok("service", "delete", "web")
	if !strings.Contains(out, "service web deleted: ") || !strings.Contains(out, "its 2 deployment(s) stay") {
		t.Fatalf("service delete:\n%s", out)
	}
	if code, _, _ := d.get("web.localhost", "/"); code != 404 {
		t.Fatalf("web.localhost answers %d after the delete, want 404", code)
	}
	// A container that was draining may be on its way out under the drain's
	// own removal when the delete returns.
	waitFor(t, 15*time.Second, func() bool { return len(d.containers(t)) == 0 })
	if _, errOut, code := d.run("deployments", "--service", "web"); code != 1 || !strings.Contains(errOut, "unknown service") {
		t.Fatalf("deployments of a deleted service: exit %d %q", code, errOut)
	}
	if _, errOut, code := d.run("service", "delete", "web"); code != 1 || !strings.Contains(errOut, "unknown service") {
		t.Fatalf("delete again: exit %d %q", code, errOut)
	}

	d.ok("service", "create", "web", "--image", v1, "--port", "8080", "--health-path", "/healthz")
	if ds := deploymentsJSON(t, d); len(ds) != 2 || ds[0]["status"] != "INACTIVE" {
		t.Fatalf("the history after creating web again: %v", ds)
	}
	out = d.ok("service", "delete", "web", "--purge")
	if !strings.Contains(out, "service web purged: 0 container(s) removed") || !strings.Contains(out, "2 local image(s) removed") {
		t.Fatalf("service delete --purge:\n%s", out)
	}
	for _, img := range []string{v1, v2} {
		if _, err := rt.InspectImage(context.Background(), img); !errors.Is(err, engine.ErrImageNotFound) {
			t.Errorf("%s after the purge: %v", img, err)
		}
	}
	d.ok("service", "create", "web", "--image", v1, "--port", "8080")
	if ds := deploymentsJSON(t, d); len(ds) != 0 {
		t.Fatalf("history after the purge: %v", ds)
	}
	if _, _, code := d.run("service", "delete"); code != 2 {
		t.Fatalf("service delete without a name: exit %d", code)
	}
}
