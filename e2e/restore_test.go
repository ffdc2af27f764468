package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
)

// TestRestoreWhoseHealthCheckFails: the host lost the ACTIVE deployment's
// container; at the next start the daemon starts it again from its snapshot,
// and the new one never passes its health check. While it is being started
// the service answers 503 with Retry-After (never a dead port's 502); once
// the deploy timeout has passed it is routed anyway (nothing better answers)
// and every view says so: the deployment stays ACTIVE (no new record) with
// runtime "unhealthy" and the last answer, `clank services` says
// "ACTIVE · unhealthy". When its health check passes again, it is healthy.
func TestRestoreWhoseHealthCheckFails(t *testing.T) {
	d := startDaemon(t, "", "127.0.0.1:0")
	rt := testdocker.Require(t)
	// Ready 8 s after it starts, checked for 20 s: the deploy passes, and a
	// restored container is not ready for 8 s, time enough for the test to
	// make its health check fail for good first.
	d.ok("service", "create", "web", "--image", testdocker.SampleImage(t, rt, "v1"), "--port", "8080",
		"--health-path", "/healthz", "--env", "READY_AFTER=8s", "--deploy-timeout", "20s")
	d.ok("deploy", "--service", "web")
	d.stop()
	testdocker.RemoveContainers(t, rt, map[string]string{engine.LabelOwner: d.owner}) // the host rebooted

	d = startDaemon(t, d.dataDir, "127.0.0.1:0")
	var port int
	waitFor(t, 30*time.Second, func() bool {
		cs := d.containers(t)
		if len(cs) == 1 && cs[0].Running && cs[0].HostPort != 0 {
			port = cs[0].HostPort
		}
		return port != 0
	})
	failHealth := func(fail int) {
		t.Helper()
		url := fmt.Sprintf("http://127.0.0.1:%d/health?fail=%d", port, fail)
		waitFor(t, 10*time.Second, func() bool { // the app may not listen yet
			resp, err := http.Post(url, "", nil)
			if err == nil {
				resp.Body.Close()
			}
			return err == nil && resp.StatusCode == http.StatusOK
		})
	}
	failHealth(1)

	// Being started: nothing healthy answers yet.
	dep := deploymentsJSON(t, d)[0]
	if dep["status"] != "ACTIVE" || dep["runtime"] != "restarting" {
		t.Fatalf("the restored deployment while it starts: %v %v (%v)", dep["status"], dep["runtime"], dep["runtime_reason"])
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.router+"/", nil)
	req.Host = "web.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("web while its restore is not healthy: %s, Retry-After %q; want 503 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}

	// The deploy timeout passes: unhealthy, said everywhere, and routed.
	waitFor(t, 60*time.Second, func() bool { return deploymentsJSON(t, d)[0]["runtime"] == "unhealthy" })
	deps := deploymentsJSON(t, d)
	if len(deps) != 1 || deps[0]["status"] != "ACTIVE" || !strings.Contains(fmt.Sprint(deps[0]["runtime_reason"]), "HTTP 500") {
		t.Fatalf("after the restore failed its health check: %d deployments, #1 %v %v %q", len(deps), deps[0]["status"], deps[0]["runtime"], deps[0]["runtime_reason"])
	}
	if out := d.ok("services"); !strings.Contains(out, "ACTIVE · unhealthy") {
		t.Fatalf("clank services does not say the restore is unhealthy:\n%s", out)
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from v1" {
		t.Fatalf("the unhealthy restore is not routed: %q", body)
	}

	failHealth(0)
	waitFor(t, 60*time.Second, func() bool { return deploymentsJSON(t, d)[0]["runtime"] == "healthy" })
	if out := d.ok("services"); strings.Contains(out, "unhealthy") || !strings.Contains(out, "ACTIVE") {
		t.Fatalf("clank services once healthy again:\n%s", out)
	}
}
