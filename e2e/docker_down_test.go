package e2e

import (
	"strings"
	"testing"
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
