package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/internal/testdocker"
)

// --replicas and clank scale from the command line: bad input is a one-line
// usage error that changes nothing; a service's replicas show as healthy/total
// in `clank services` and `clank deployments` (text and JSON, each replica
// in -o json); clank scale runs the ACTIVE deployment with another count in
// place.
func TestCLIReplicasAndScale(t *testing.T) {
	d := startDaemon(t, "", "127.0.0.1:0")
	rt := testdocker.Require(t)
	v1 := testdocker.SampleImage(t, rt, "v1")

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"service", "create", "web", "--image", v1, "--port", "8080", "--replicas", "0"}, 2, "invalid replica count 0: want 1 to 64"},
		{[]string{"service", "create", "web", "--image", v1, "--port", "8080", "--replicas", "many"}, 2, "invalid argument"},
		{[]string{"scale", "3"}, 2, "scale needs --service NAME"},
		{[]string{"scale", "--service", "web", "two"}, 2, `invalid replica count "two"`},
		{[]string{"scale", "--service", "web", "65"}, 2, "invalid replica count 65"},
		{[]string{"scale", "--service", "web"}, 2, "accepts 1 arg"},
		{[]string{"scale", "--service", "nope", "2"}, 1, `unknown service "nope"`},
	} {
		out, errOut, code := d.run(tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("clank %s: exit %d (want %d), stderr %q (want one line with %q), stdout %q", strings.Join(tc.args, " "), code, tc.code, errOut, tc.msg, out)
		}
	}
	if svcs := servicesJSON(t, d); len(svcs) != 0 {
		t.Fatalf("bad input left services: %v", svcs)
	}

	d.ok("service", "create", "web", "--image", v1, "--port", "8080", "--health-path", "/healthz", "--replicas", "2")
	if web := servicesJSON(t, d)["web"]; web["replicas"] != 2.0 || web["healthy_replicas"] != 0.0 {
		t.Fatalf("new service: replicas %v, healthy %v", web["replicas"], web["healthy_replicas"])
	}
	d.ok("deploy", "--service", "web")
	waitFor(t, time.Minute, func() bool {
		web := servicesJSON(t, d)["web"]
		return web["healthy_replicas"] == 2.0 && web["active_replicas"] == 2.0
	})
	deps := deploymentsJSON(t, d)
	if deps[0]["replicas"] != 2.0 || deps[0]["healthy_replicas"] != 2.0 {
		t.Fatalf("deployment #1: replicas %v, healthy %v", deps[0]["replicas"], deps[0]["healthy_replicas"])
	}
	cs, _ := deps[0]["containers"].([]any)
	if len(cs) != 2 {
		t.Fatalf("deployment #1 containers: %v", deps[0]["containers"])
	}
	for i, c := range cs {
		r := c.(map[string]any)
		if r["slot"] != float64(i) || r["runtime"] != "healthy" || r["container_id"] == "" || r["host_port"] == 0.0 {
			t.Errorf("replica %d: %v", i, r)
		}
	}

	if out := d.ok("scale", "--service", "web", "3"); !strings.Contains(out, "web: deployment #1 runs 3 replicas, 3/3 healthy") {
		t.Fatalf("scale to 3: %q", out)
	}
	if out := d.ok("services"); !strings.Contains(out, "REPLICAS") || !strings.Contains(out, "3/3") {
		t.Errorf("clank services:\n%s", out)
	}
	if out := d.ok("deployments", "--service", "web"); !strings.Contains(out, "3/3") {
		t.Errorf("clank deployments:\n%s", out)
	}
	if n := len(d.containers(t)); n != 3 {
		t.Errorf("%d containers after scale to 3", n)
	}
	d.ok("service", "update", "web", "--replicas", "4")
	if out := d.ok("services"); !strings.Contains(out, "3/3 → 4") {
		t.Errorf("clank services after update --replicas 4 (the next deployment's count):\n%s", out)
	}
	if out := d.ok("scale", "--service", "web", "1"); !strings.Contains(out, "runs 1 replica, 1/1 healthy") {
		t.Fatalf("scale to 1: %q", out)
	}
	if n := len(deploymentsJSON(t, d)); n != 1 {
		t.Errorf("%d deployments: scaling makes none", n)
	}
	var svcs []map[string]any
	json.Unmarshal([]byte(d.ok("services", "-o", "json")), &svcs)
	if svcs[0]["replicas"] != 1.0 || svcs[0]["healthy_replicas"] != 1.0 {
		t.Errorf("after scale to 1: %v", svcs[0])
	}
}
