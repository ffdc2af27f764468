package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
)

// TestPruneAfterEachDeployAndByHand: a daemon that keeps the images of the
// last 2 ACTIVE deployments per service removes older local images after
// each deploy by itself (so they lose the badge), never the current one's;
// `clank prune` does the same by hand with its own --keep, says what it did,
// and refuses bad input.
func TestPruneAfterEachDeployAndByHand(t *testing.T) {
	d := startDaemonWith(t, "", "127.0.0.1:0", nil, "--keep-images", "2")
	rt := testdocker.Require(t)
	img := map[string]string{}
	for _, v := range []string{"v1", "v2", "v3"} {
		img[v] = testdocker.SampleImage(t, rt, v)
	}
	local := func(ref string) bool {
		t.Helper()
		_, err := rt.InspectImage(context.Background(), ref)
		if err != nil && !errors.Is(err, engine.ErrImageNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	// Not kept warm: a warm standby's image is never pruned.
	d.ok("service", "create", "web", "--image", img["v1"], "--port", "8080", "--health-path", "/healthz", "--keep-warm=false")
	for _, v := range []string{"v1", "v2", "v3"} {
		d.ok("deploy", "--service", "web", "--image", img[v])
	}
	// After #3's cutover #2 drains, then the daemon prunes: #1 is beyond the
	// last 2 that were ACTIVE.
	waitFor(t, 30*time.Second, func() bool { return !local(img["v1"]) })
	if !local(img["v2"]) || !local(img["v3"]) {
		t.Fatalf("the automatic prune removed a kept image: v2 %v, v3 %v", local(img["v2"]), local(img["v3"]))
	}
	waitFor(t, 30*time.Second, func() bool {
		deps := deploymentsJSON(t, d)
		return deps[2]["image_availability"] == "missing" && deps[2]["rollback_capable"] == false && deps[1]["rollback_capable"] == true
	})
	if body := d.mustGet("web.localhost", "/"); body != "hello from v3" {
		t.Fatalf("web answers %q after the prune", body)
	}

	// By hand, bad input first: exit 2 and 1, nothing removed.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"prune", "--keep", "0"}, 2, "invalid --keep 0: keep at least 1"},
		{[]string{"prune", "--service", "nope"}, 1, `unknown service "nope"`},
	} {
		out, errOut, code := d.run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("clank %s: exit %d, stderr %q, stdout %q; want exit %d and %q", strings.Join(tc.args, " "), code, errOut, out, tc.code, tc.msg)
		}
	}
	if !local(img["v2"]) {
		t.Fatal("a refused prune removed v2")
	}
	var pruned []map[string]any
	if err := json.Unmarshal([]byte(d.ok("prune", "--keep", "1", "--service", "web", "-o", "json")), &pruned); err != nil {
		t.Fatal(err)
	}
	if len(pruned) != 1 || pruned[0]["service"] != "web" || pruned[0]["deployment"] != float64(2) || pruned[0]["image"] != img["v2"] || pruned[0]["error"] != nil {
		t.Fatalf("prune --keep 1: %v, want web's #2", pruned)
	}
	if local(img["v2"]) || !local(img["v3"]) {
		t.Fatalf("after prune --keep 1: v2 local %v (want gone), v3 local %v (want kept: current)", local(img["v2"]), local(img["v3"]))
	}
	if out := d.ok("prune", "--keep", "1"); strings.TrimSpace(out) != "nothing to prune" {
		t.Fatalf("a second prune:\n%s", out)
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from v3" {
		t.Fatalf("web answers %q after prune --keep 1", body)
	}
	_, errOut, code := d.run("rollback", "--service", "web")
	if code != 1 || !strings.Contains(errOut, "is gone") {
		t.Fatalf("rollback to the pruned #2: exit %d, %q", code, errOut)
	}
}
