package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/internal/testdocker"
)

func TestCLIDeployRollbackAndJSON(t *testing.T) {
	d := startDaemon(t, "", "127.0.0.1:0")
	rt := testdocker.Require(t)
	v1 := testdocker.SampleImage(t, rt, "v1")
	v2 := testdocker.SampleImage(t, rt, "v2")

	if fi, err := os.Stat(filepath.Join(d.dataDir, "clank.sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}
	// Not kept warm: a replaced deployment's container goes after its drain.
	d.ok("service", "create", "web", "--image", v1, "--port", "8080", "--env", "SECRET=hunter2-v1", "--health-path", "/healthz", "--memory", "64m", "--keep-warm=false")
	out := d.ok("deploy", "--service", "web")
	for _, step := range []string{"DEPLOYING", "HEALTH_CHECKING", "ACTIVE"} {
		if !strings.Contains(out, step) {
			t.Fatalf("deploy output lacks %s:\n%s", step, out)
		}
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from v1" {
		t.Fatalf("web answers %q", body)
	}
	d.ok("env", "set", "--service", "web", "SECRET=hunter2-v2", "EXTRA=1")
	d.ok("deploy", "--service", "web", "--image", v2)
	if body := d.mustGet("web.localhost", "/env/SECRET"); body != "hunter2-v2" {
		t.Fatalf("SECRET=%q after deploy #2", body)
	}

	// A dry run names what changes and shows no secret.
	out = d.ok("rollback", "--service", "web", "--dry-run")
	for _, want := range []string{"to #1", "image", "env SECRET", "changed", "env EXTRA", "removed", "dry run"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry run lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "hunter2") {
		t.Fatalf("dry run shows an env value:\n%s", out)
	}
	if n := deploymentsJSON(t, d); len(n) != 2 {
		t.Fatalf("the dry run created a deployment: %d", len(n))
	}

	out = d.ok("rollback", "--service", "web")
	if !strings.Contains(out, "rollback #3 (from #1)") || !strings.Contains(out, "ACTIVE") {
		t.Fatalf("rollback output:\n%s", out)
	}
	if body := d.mustGet("web.localhost", "/env/SECRET"); body != "hunter2-v1" {
		t.Fatalf("SECRET=%q after rollback, want the snapshot's", body)
	}

	deps := deploymentsJSON(t, d)
	if len(deps) != 3 {
		t.Fatalf("%d deployments", len(deps))
	}
	for _, field := range []string{"id", "number", "service", "kind", "source_deployment_id", "status", "image", "image_digest", "port", "health_check", "cpus", "memory", "domains", "env_keys", "created_at", "activated_at", "ended_at", "rollback_capable", "image_availability", "image_source", "triggered_by", "failure_reason"} {
		if _, ok := deps[0][field]; !ok {
			t.Errorf("deployment JSON lacks %q", field)
		}
	}
	if deps[0]["kind"] != "rollback" || deps[0]["status"] != "ACTIVE" || deps[0]["source_deployment_id"] != deps[2]["id"] {
		t.Errorf("newest deployment: %v", deps[0])
	}
	if _, ok := deps[0]["env"]; ok {
		t.Error("env values in JSON without --show-env")
	}
	if by, _ := deps[0]["triggered_by"].(string); !strings.Contains(by, "(cli)") {
		t.Errorf("triggered_by %q", by)
	}
	// #1 ran and its image is here: rollback capable (once checked).
	waitFor(t, 30*time.Second, func() bool { return deploymentsJSON(t, d)[2]["rollback_capable"] == true })

	var svcs []map[string]any
	if err := json.Unmarshal([]byte(d.ok("services", "-o", "json")), &svcs); err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"name", "image", "port", "domains", "env_keys", "health_check", "cpus", "memory", "active_deployment_id"} {
		if _, ok := svcs[0][field]; !ok {
			t.Errorf("service JSON lacks %q", field)
		}
	}
	if svcs[0]["image"] != v2 {
		t.Errorf("the rollback changed the service's image to %v", svcs[0]["image"])
	}
	if out := d.ok("services", "--show-env"); !strings.Contains(out, "SECRET=hunter2-v2") {
		t.Errorf("--show-env does not show the current value:\n%s", out)
	}
	if logs := d.ok("logs", "--service", "web"); !strings.Contains(logs, "listening") {
		t.Errorf("logs:\n%s", logs)
	}
	// #2 was replaced: its container is gone, the tail of its log was kept
	// (logs_test.go says more).
	waitFor(t, 30*time.Second, func() bool { return deploymentsJSON(t, d)[1]["status"] == "INACTIVE" })
	out, errOut, code := d.run("logs", "--service", "web", "--deployment", "2")
	if code != 0 || !strings.HasPrefix(out, "-- kept from removed container ") || !strings.Contains(out, "sampleapp v2 listening") {
		t.Errorf("logs of a replaced deployment: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(d.log.String(), "hunter2") {
		t.Fatalf("an env value reached the daemon's log:\n%s", d.log)
	}
}

func deploymentsJSON(t *testing.T, d *daemon) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(d.ok("deployments", "--service", "web", "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCLIBadInputAndExitCodes(t *testing.T) {
	d := startDaemon(t, "", "127.0.0.1:0")
	rt := testdocker.Require(t)
	v1 := testdocker.SampleImage(t, rt, "v1")
	d.ok("service", "create", "web", "--image", v1, "--port", "8080", "--health-path", "/healthz")
	d.ok("service", "create", "shop", "--image", v1, "--port", "8080", "--domain", "shop.example.com")
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"rollback"}, 2, "needs --service"},
		{[]string{"bogus"}, 2, "unknown command"},
		{[]string{"service"}, 2, "needs a subcommand: create, delete, update"},
		{[]string{"service", "delete"}, 2, "accepts 1 arg"},
		{[]string{"deploy", "--service", "web", "--nope"}, 2, "unknown flag"},
		{[]string{"service", "create", "Bad_Name", "--image", v1, "--port", "80"}, 2, "invalid service name"},
		{[]string{"service", "create", "x", "--image", v1, "--port", "99999"}, 2, "invalid port"},
		{[]string{"service", "create", "x", "--image", v1, "--port", "80", "--memory", "lots"}, 2, "invalid memory size"},
		{[]string{"service", "create", "x", "--image", "Not A Ref", "--port", "80"}, 2, "invalid image reference"},
		{[]string{"service", "create", "x", "--image", v1, "--port", "80", "--env", "1X=y"}, 2, "invalid env key"},
		{[]string{"service", "update", "web", "--health-interval", "soon"}, 2, "invalid argument"},
		{[]string{"service", "update", "web", "--domain", "shop.example.com"}, 1, "taken by service shop"},
		{[]string{"env", "set", "--service", "nope", "A=1"}, 1, `unknown service "nope"`},
		{[]string{"rollback", "--service", "web"}, 1, "no earlier deployment"},
		{[]string{"rollback", "--service", "web", "--deployment", "7"}, 1, "no deployment #7"},
		{[]string{"redeploy", "--service", "web"}, 2, "needs --deployment"},
		{[]string{"deployments", "--service", "web", "-o", "yaml"}, 2, "unknown output format"},
	}
	for _, tc := range cases {
		out, errOut, code := d.run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("clank %s: exit %d (want %d), stderr %q (want %q), stdout %q", strings.Join(tc.args, " "), code, tc.code, errOut, tc.msg, out)
			continue
		}
		if lines := strings.Count(strings.TrimSpace(errOut), "\n"); lines != 0 {
			t.Errorf("clank %s: error is %d lines: %q", strings.Join(tc.args, " "), lines+1, errOut)
		}
	}
	// None of it changed anything.
	var svcs []map[string]any
	if err := json.Unmarshal([]byte(d.ok("services", "-o", "json")), &svcs); err != nil {
		t.Fatal(err)
	}
	if len(svcs) != 2 {
		t.Fatalf("%d services after bad input", len(svcs))
	}
	if n := len(deploymentsJSON(t, d)); n != 0 {
		t.Fatalf("%d deployments after bad input", n)
	}

	// No daemon: say how to start one.
	_, errOut, code := runClank(t, t.TempDir(), "services")
	if code != 1 || !strings.Contains(errOut, "not running") || !strings.Contains(errOut, "clank serve") {
		t.Fatalf("without a daemon: exit %d, %q", code, errOut)
	}
}
