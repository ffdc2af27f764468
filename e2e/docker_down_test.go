package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
)

// TestDockerUnreachable: a daemon whose Docker engine does not answer says so
// at start and in every command that needs it, and keeps serving the rest.
func TestDockerUnreachable(t *testing.T) {
	d := startDaemonWith(t, "", "127.0.0.1:0", []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"})
	if !strings.Contains(d.log.String(), "cannot reach the Docker engine") {
		t.Fatalf("no warning at start:\n%s", d.log)
	}
	d.ok("service", "create", "web", "--image", "clank-test/none:v1", "--port", "8080")
	_, errOut, code := d.run("deploy", "--service", "web")
	if code != 1 || !strings.Contains(errOut, "cannot reach the Docker engine") {
		t.Fatalf("deploy without Docker: exit %d, %q", code, errOut)
	}
	_, errOut, code = d.run("rollback", "--service", "web", "--dry-run")
	if code != 1 || !strings.Contains(errOut, "cannot reach the Docker engine") {
		t.Fatalf("rollback without Docker: exit %d, %q", code, errOut)
	}
	if out := d.ok("services"); !strings.Contains(out, "web") {
		t.Fatalf("services without Docker:\n%s", out)
	}
	if n := len(deploymentsJSON(t, d)); n != 0 {
		t.Fatalf("%d deployments created without Docker", n)
	}
	// Known but with nothing deployed: 503; unknown: 404.
	if code, _, err := d.get("web.localhost", "/"); err != nil || code != 503 {
		t.Fatalf("router for a service with nothing deployed: %d %v", code, err)
	}
	if code, _, err := d.get("nope.localhost", "/"); err != nil || code != 404 {
		t.Fatalf("router for an unknown host: %d %v", code, err)
	}
}

// TestRestartWithoutDockerThenWithIt: the daemon is killed mid-deploy, comes
// back while Docker does not answer, then again once it does. Without Docker
// it records the interrupted deployment as FAILED, refuses deployments and
// leaves the containers it cannot see; with Docker back it removes the interrupted
// deployment's container, keeps the ACTIVE one's, and deploys again.
func TestRestartWithoutDockerThenWithIt(t *testing.T) {
	d := startDaemon(t, "", "127.0.0.1:0")
	rt := testdocker.Require(t)
	v1, v2 := testdocker.SampleImage(t, rt, "v1"), testdocker.SampleImage(t, rt, "v2")
	d.ok("service", "create", "web", "--image", v1, "--port", "8080", "--health-path", "/healthz")
	d.ok("deploy", "--service", "web")
	d.ok("env", "set", "--service", "web", "READY_AFTER=10m")
	d.ok("service", "update", "web", "--deploy-timeout", "15m")
	d.ok("deploy", "--service", "web", "--image", v2, "--detach")
	waitFor(t, 30*time.Second, func() bool { s, _ := statusOf(t, d, 2); return s == "HEALTH_CHECKING" })
	d.kill9()
	if cs := d.containers(t); len(cs) != 2 {
		t.Fatalf("%d containers after the kill, want #1's and #2's", len(cs))
	}

	down := startDaemonWith(t, d.dataDir, "127.0.0.1:0", []string{"DOCKER_HOST=unix:///nonexistent/docker.sock"})
	// The warning goes to stderr, copied by its own goroutine: it may reach
	// the log after stdout's "edge router on" line that startDaemonWith waits for.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(down.log.String(), "cannot reach the Docker engine"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning at start:\n%s", down.log)
		}
	}
	if s, reason := statusOf(t, down, 2); s != "FAILED" || !strings.Contains(reason, "interrupted") {
		t.Fatalf("#2 after a restart without Docker: %s %q", s, reason)
	}
	if s, _ := statusOf(t, down, 1); s != "ACTIVE" {
		t.Fatalf("#1 after a restart without Docker: %s", s)
	}
	// Routed from the store, or, where the router waits for Docker to confirm
	// a container before sending it traffic (docs/architecture.md, the cutover),
	// 503: never a dead port's 502, never another app.
	if code, body, err := down.get("web.localhost", "/"); err != nil || !(code == 200 && body == "hello from v1" || code == 503) {
		t.Fatalf("without Docker web answers %d %q %v, want #1 or 503", code, body, err)
	}
	for _, args := range [][]string{{"deploy", "--service", "web"}, {"rollback", "--service", "web"}} {
		if _, errOut, code := down.run(args...); code != 1 || !strings.Contains(errOut, "cannot reach the Docker engine") {
			t.Errorf("clank %s without Docker: exit %d, %q", strings.Join(args, " "), code, errOut)
		}
	}
	if n := len(deploymentsJSON(t, down)); n != 2 {
		t.Fatalf("%d deployments after refusals without Docker, want 2", n)
	}
	if cs := down.containers(t); len(cs) != 2 {
		t.Fatalf("without Docker the daemon changed the containers: %d, want the 2 it could not see", len(cs))
	}
	down.stop()

	up := startDaemon(t, d.dataDir, "127.0.0.1:0")
	cs := up.containers(t)
	if len(cs) != 1 || cs[0].Labels[engine.LabelDeployment] != deploymentsJSON(t, up)[1]["id"] {
		t.Fatalf("with Docker back: containers %+v, want #1's alone", cs)
	}
	if body := up.mustGet("web.localhost", "/"); body != "hello from v1" {
		t.Fatalf("with Docker back web answers %q", body)
	}
	up.ok("env", "unset", "--service", "web", "READY_AFTER")
	up.ok("deploy", "--service", "web", "--image", v2)
	if body := up.mustGet("web.localhost", "/"); body != "hello from v2" {
		t.Fatalf("after a deploy with Docker back web answers %q", body)
	}
}
