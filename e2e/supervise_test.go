package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/internal/testdocker"
)

// The policy flags of `service create` and `service update` and their JSON;
// a crashed ACTIVE container in `clank services` ("ACTIVE · crashed") and in
// the JSON of services and deployments; a warm standby in `clank
// deployments`.
func TestCLIPolicyRuntimeAndWarmStandby(t *testing.T) {
	d := startDaemon(t, "", "127.0.0.1:0")
	rt := testdocker.Require(t)
	v1 := testdocker.SampleImage(t, rt, "v1")
	v2 := testdocker.SampleImage(t, rt, "v2")
	d.ok("service", "create", "web", "--image", v1, "--port", "8080", "--health-path", "/healthz",
		"--health-interval", "200ms", "--auto-rollback", "--watch-window", "2m", "--watch-failures", "4", "--watch-5xx", "0.25")
	svc := servicesJSON(t, d)["web"]
	for k, want := range map[string]any{"auto_rollback": true, "watch_window": "2m0s", "watch_failures": 4.0, "watch_5xx": 0.25, "keep_warm": true, "runtime": nil} {
		if svc[k] != want {
			t.Errorf("service %s = %v, want %v", k, svc[k], want)
		}
	}
	for _, bad := range [][]string{{"--watch-failures", "0"}, {"--watch-5xx", "1.5"}, {"--watch-window", "-1s"}, {"--watch-window", "soon"}} {
		if _, errOut, code := d.run(append([]string{"service", "update", "web"}, bad...)...); code != 2 || strings.Contains(errOut, "\n\n") {
			t.Errorf("service update %v: exit %d %q, want 2", bad, code, errOut)
		}
	}
	d.ok("service", "update", "web", "--auto-rollback=false", "--watch-window", "0s", "--keep-warm=false")
	d.ok("service", "update", "web", "--watch-window", "1m", "--keep-warm")
	svc = servicesJSON(t, d)["web"]
	if svc["auto_rollback"] != false || svc["watch_window"] != "1m0s" || svc["keep_warm"] != true {
		t.Fatalf("after the updates: %v", svc)
	}

	d.ok("deploy", "--service", "web")
	d.ok("deploy", "--service", "web", "--image", v2)
	deps := deploymentsJSON(t, d)
	if deps[0]["runtime"] != "healthy" || deps[0]["restarts"] != 0.0 || deps[0]["last_exit"] != nil || deps[0]["watch_until"] == nil {
		t.Fatalf("#2: runtime %v restarts %v last_exit %v watch_until %v", deps[0]["runtime"], deps[0]["restarts"], deps[0]["last_exit"], deps[0]["watch_until"])
	}
	waitFor(t, 20*time.Second, func() bool {
		return deploymentsJSON(t, d)[1]["warm_until"] != nil
	})
	if out := d.ok("deployments", "--service", "web"); !strings.Contains(out, "INACTIVE · warm, 1m left") {
		t.Errorf("deployments do not show the warm standby:\n%s", out)
	}
	if deploymentsJSON(t, d)[1]["runtime"] != nil {
		t.Errorf("an INACTIVE deployment has a runtime")
	}

	// A crash (the engine restarts it with a 1 s backoff): crashed or
	// restarting beside ACTIVE, then healthy again with restarts 1.
	id := deps[0]["container_id"].(string)
	if _, err := rt.Client().ContainerKill(context.Background(), id, client.ContainerKillOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool {
		out := d.ok("services")
		return strings.Contains(out, "ACTIVE · crashed") || strings.Contains(out, "ACTIVE · restarting")
	})
	waitFor(t, 20*time.Second, func() bool {
		s := servicesJSON(t, d)["web"]
		return s["runtime"] == "healthy" && s["restarts"] == 1.0
	})
	s := servicesJSON(t, d)["web"]
	if s["last_exit"] != "exit 137" || !strings.Contains(d.ok("services"), "ACTIVE ") || strings.Contains(d.ok("services"), "·") {
		t.Fatalf("after the restart: last_exit %v\n%s", s["last_exit"], d.ok("services"))
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from v2" {
		t.Fatalf("after the restart web answers %q", body)
	}
}

// `clank serve --notify URL` (and CLANK_NOTIFY): a deployment that ends, a
// failed one and a crash each reach the receivers as a JSON POST, without
// env values; a bad URL is bad usage.
func TestServeNotifies(t *testing.T) {
	type note struct {
		Event      string         `json:"event"`
		Service    string         `json:"service"`
		Deployment map[string]any `json:"deployment"`
	}
	got := make(chan note, 100)
	bodies := make(chan string, 100)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n note
		if err := json.Unmarshal(b, &n); err != nil {
			t.Errorf("notification %q: %v", b, err)
		}
		bodies <- string(b)
		got <- n
	}))
	defer recv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway) // a receiver that fails: the other still hears
	}))
	defer other.Close()
	d := startDaemonWith(t, "", "127.0.0.1:0", []string{"CLANK_NOTIFY=" + recv.URL + "/ignored"}, "--notify", recv.URL+"/hook", "--notify", other.URL)
	rt := testdocker.Require(t)
	v1 := testdocker.SampleImage(t, rt, "v1")
	d.ok("service", "create", "web", "--image", v1, "--port", "8080", "--health-path", "/healthz", "--env", "TOKEN=s3cret-token")
	d.ok("deploy", "--service", "web")
	expect := func(event string) note {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case n := <-got:
				if n.Event == event {
					return n
				}
			case <-timeout:
				t.Fatalf("no %s notification", event)
			}
		}
	}
	if n := expect("deployment.active"); n.Service != "web" || n.Deployment["number"] != 1.0 {
		t.Fatalf("deployment.active: %+v", n)
	}
	id := deploymentsJSON(t, d)[0]["container_id"].(string)
	if _, err := rt.Client().ContainerKill(context.Background(), id, client.ContainerKillOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := expect("container.crashed"); n.Deployment["runtime"] != "crashed" || n.Deployment["last_exit"] != "exit 137" {
		t.Fatalf("container.crashed: %+v", n)
	}
	d.ok("env", "set", "--service", "web", "HEALTH=fail")
	d.ok("service", "update", "web", "--deploy-timeout", "3s")
	d.run("deploy", "--service", "web")
	if n := expect("deployment.failed"); n.Deployment["status"] != "FAILED" {
		t.Fatalf("deployment.failed: %+v", n)
	}
	for len(bodies) > 0 {
		if b := <-bodies; strings.Contains(b, "s3cret-token") {
			t.Fatalf("an env value was sent: %s", b)
		}
	}

	_, errOut, code := runClank(t, t.TempDir(), "serve", "--notify", "ftp://nope", "--http-addr", "127.0.0.1:0", "--ssh-addr", "", "--registry-addr", "")
	if code != 2 || !strings.Contains(errOut, "invalid --notify URL") {
		t.Fatalf("serve with a bad --notify: exit %d %q", code, errOut)
	}
}
