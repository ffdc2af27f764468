package e2e

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
)

// statusOf is deployment #n's status (n from 1, newest first in the list).
func statusOf(t *testing.T, d *daemon, n int) (string, string) {
	t.Helper()
	for _, dep := range deploymentsJSON(t, d) {
		if int(dep["number"].(float64)) == n {
			reason, _ := dep["failure_reason"].(string)
			return dep["status"].(string), reason
		}
	}
	t.Fatalf("no deployment #%d", n)
	return "", ""
}

func (d *daemon) containers(t *testing.T) []engine.Container {
	t.Helper()
	rt := testdocker.Require(t)
	cs, err := rt.List(context.Background(), map[string]string{engine.LabelOwner: d.owner})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestKill9MidCutover kills the daemon with SIGKILL while a deployment is
// health checking, and again while the replaced one drains: after each
// restart no record is lost, exactly one deployment is ACTIVE and serving, and
// no container is left over.
func TestKill9MidCutover(t *testing.T) {
	d := startDaemon(t, "", "127.0.0.1:0")
	rt := testdocker.Require(t)
	v1 := testdocker.SampleImage(t, rt, "v1")
	v2 := testdocker.SampleImage(t, rt, "v2")
	d.ok("service", "create", "web", "--image", v1, "--port", "8080", "--health-path", "/healthz")
	d.ok("deploy", "--service", "web")

	// 1. Killed while #2 is HEALTH_CHECKING (it would take 5 minutes to become
	// ready: the kill comes first however slow the machine).
	d.ok("env", "set", "--service", "web", "READY_AFTER=5m")
	d.ok("service", "update", "web", "--deploy-timeout", "10m")
	d.ok("deploy", "--service", "web", "--image", v2, "--detach")
	waitFor(t, 30*time.Second, func() bool { s, _ := statusOf(t, d, 2); return s == "HEALTH_CHECKING" })
	d.kill9()

	d = startDaemon(t, d.dataDir, "127.0.0.1:0")
	if s, reason := statusOf(t, d, 2); s != "FAILED" || !strings.Contains(reason, "interrupted") {
		t.Fatalf("#2 after restart: %s %q", s, reason)
	}
	if s, _ := statusOf(t, d, 1); s != "ACTIVE" {
		t.Fatalf("#1 after restart: %s", s)
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from v1" {
		t.Fatalf("after restart web answers %q", body)
	}
	if cs := d.containers(t); len(cs) != 1 {
		t.Fatalf("%d containers after restart, want 1: %+v", len(cs), cs)
	}

	// 2. Killed while #1 DRAINS: a stream keeps a request in flight on it
	// (its headers and first event have arrived; the next is 20 s away).
	d.ok("env", "unset", "--service", "web", "READY_AFTER")
	slow := make(chan struct{})
	inFlight := make(chan error, 1)
	go func() {
		defer close(slow)
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.router+"/sse?n=2&ms=20000", nil)
		req.Host = "web.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = bufio.NewReader(resp.Body).ReadString('\n')
		}
		inFlight <- err
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	if err := <-inFlight; err != nil {
		t.Fatalf("a stream from #1: %v", err)
	}
	d.ok("deploy", "--service", "web")
	waitFor(t, 30*time.Second, func() bool { s, _ := statusOf(t, d, 1); return s == "DRAINING" })
	d.kill9()
	<-slow

	d = startDaemon(t, d.dataDir, "127.0.0.1:0")
	deps := deploymentsJSON(t, d)
	if len(deps) != 3 {
		t.Fatalf("%d deployments after two crashes, want 3", len(deps))
	}
	active := 0
	for _, dep := range deps {
		if dep["status"] == "ACTIVE" {
			active++
		}
	}
	if s, _ := statusOf(t, d, 1); s != "INACTIVE" || active != 1 {
		t.Fatalf("after restart: #1 %s, %d ACTIVE", s, active)
	}
	if s, _ := statusOf(t, d, 3); s != "ACTIVE" {
		t.Fatalf("#3 after restart: %s", s)
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from v2" {
		t.Fatalf("after restart web answers %q", body)
	}
	if cs := d.containers(t); len(cs) != 1 {
		t.Fatalf("%d containers after restart, want 1", len(cs))
	}
}
