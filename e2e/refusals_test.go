package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/internal/testdocker"
)

// TestCLIRefusalsCreateNothing: every refusal of the README through the real
// binary, each with exit code 1, its reason on one line of stderr, and no
// deployment record or container made; and a deployment that fails exits 1
// with its reason, leaves no container, and the ACTIVE one serving.
func TestCLIRefusalsCreateNothing(t *testing.T) {
	d := startDaemon(t, "", "127.0.0.1:0")
	rt := testdocker.Require(t)
	img := map[string]string{}
	for _, v := range []string{"v1", "v2", "v3", "v4", "shop"} {
		img[v] = testdocker.SampleImage(t, rt, v)
	}
	d.ok("service", "create", "web", "--image", img["v1"], "--port", "8080", "--health-path", "/healthz",
		"--domain", "web.localhost", "--domain", "shop.localhost")
	d.ok("deploy", "--service", "web") // #1, with shop.localhost

	// #2 fails its health check: exit 1 with the reason; #1 keeps serving and
	// #2 leaves no container.
	d.ok("env", "set", "--service", "web", "HEALTH=fail")
	d.ok("service", "update", "web", "--deploy-timeout", "5s")
	out, errOut, code := d.run("deploy", "--service", "web", "--image", img["v2"])
	if code != 1 || !strings.Contains(errOut, "deployment #2 of web FAILED") || !strings.Contains(errOut, "HTTP 500") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Fatalf("a failing deployment: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	if !strings.Contains(out, "FAILED") {
		t.Errorf("the failing deployment's steps do not show FAILED:\n%s", out)
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from v1" {
		t.Fatalf("after #2 failed web answers %q", body)
	}
	if cs := d.containers(t); len(cs) != 1 {
		t.Fatalf("%d containers after #2 failed, want #1's alone: %+v", len(cs), cs)
	}

	// #3 and #4 run; web gives shop.localhost up and the shop service takes it.
	d.ok("env", "unset", "--service", "web", "HEALTH")
	d.ok("service", "update", "web", "--domain", "web.localhost", "--deploy-timeout", "60s")
	d.ok("deploy", "--service", "web", "--image", img["v3"])
	d.ok("deploy", "--service", "web", "--image", img["v4"])
	d.ok("service", "create", "shop", "--image", img["shop"], "--port", "8080", "--domain", "shop.localhost")
	d.ok("deploy", "--service", "shop")
	waitFor(t, 30*time.Second, func() bool {
		deps := deploymentsJSON(t, d)
		return deps[1]["status"] == "INACTIVE" && deps[3]["status"] == "INACTIVE"
	})

	refused := func(t *testing.T, reason string, args ...string) {
		t.Helper()
		before, beforeC := len(deploymentsJSON(t, d)), containerIDs(t, d)
		out, errOut, code := d.run(args...)
		if code != 1 || !strings.Contains(errOut, reason) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Fatalf("clank %s: exit %d, stderr %q (want exit 1, one line, %q), stdout:\n%s", strings.Join(args, " "), code, errOut, reason, out)
		}
		// The refusal is the answer: the action's path has ended.
		// A container may go meanwhile (#1, the warm standby #3 replaced,
		// may still be on its way out); none may come.
		after, afterC := len(deploymentsJSON(t, d)), containerIDs(t, d)
		added := slices.DeleteFunc(afterC, func(id string) bool { return slices.Contains(beforeC, id) })
		if after != before || len(added) > 0 {
			t.Fatalf("clank %s was refused and created something: %d -> %d deployments, new containers %v", strings.Join(args, " "), before, after, added)
		}
	}
	t.Run("never active", func(t *testing.T) {
		refused(t, "deployment #2 of web was never ACTIVE (FAILED: health check", "rollback", "--service", "web", "--deployment", "2")
	})
	t.Run("the current ACTIVE", func(t *testing.T) {
		refused(t, "deployment #4 is the current ACTIVE deployment of web", "rollback", "--service", "web", "--deployment", "4")
	})
	t.Run("a domain another service owns now", func(t *testing.T) {
		const why = "cannot roll back to deployment #1: its snapshot restores a domain another service owns now: domain shop.localhost is taken by service shop"
		refused(t, why, "rollback", "--service", "web", "--deployment", "1")
		refused(t, why, "rollback", "--service", "web", "--deployment", "1", "--dry-run")
		if body := d.mustGet("shop.localhost", "/"); body != "hello from shop" {
			t.Fatalf("shop.localhost answers %q after the refused rollback", body)
		}
	})
	t.Run("image gone", func(t *testing.T) {
		testdocker.RemoveImage(t, rt, img["v3"]) // #3's, local only
		refused(t, "cannot rollback to deployment #3: its image "+img["v3"], "rollback", "--service", "web")
		refused(t, "is gone", "redeploy", "--service", "web", "--deployment", "3")
	})
	t.Run("in progress", func(t *testing.T) {
		// #5 takes ten minutes to be ready: it is in progress for the rest of the test.
		d.ok("env", "set", "--service", "web", "READY_AFTER=10m")
		d.ok("service", "update", "web", "--deploy-timeout", "15m")
		d.ok("deploy", "--service", "web", "--detach")
		waitFor(t, 30*time.Second, func() bool { return deploymentsJSON(t, d)[0]["status"] == "HEALTH_CHECKING" })
		const why = "service web: deployment #5 (HEALTH_CHECKING) is in progress; wait for it to end"
		refused(t, why, "deploy", "--service", "web")
		refused(t, why, "rollback", "--service", "web", "--deployment", "1")
		refused(t, why, "redeploy", "--service", "web", "--deployment", "4")
	})
	if body := d.mustGet("web.localhost", "/"); body != "hello from v4" {
		t.Fatalf("after the refusals web answers %q, want #4's", body)
	}
}

// containerIDs lists the IDs of the daemon's containers, sorted.
func containerIDs(t *testing.T, d *daemon) []string {
	t.Helper()
	var ids []string
	for _, c := range d.containers(t) {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}
