package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/clank-dev/clank/internal/testdocker"
)

// servicesJSON is `clank services -o json`, by name.
func servicesJSON(t *testing.T, d *daemon) map[string]map[string]any {
	t.Helper()
	var list []map[string]any
	if err := json.Unmarshal([]byte(d.ok("services", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, s := range list {
		out[s["name"].(string)] = s
	}
	return out
}

// A rollback freezes pushes; `clank services` says so (and -o json says by
// whom and why); `clank unfreeze` lifts it. Git settings are service
// settings, checked before anything is created.
func TestCLIFreezeAndUnfreeze(t *testing.T) {
	d := startDaemon(t, "", "127.0.0.1:0")
	rt := testdocker.Require(t)
	v1 := testdocker.SampleImage(t, rt, "v1")
	v2 := testdocker.SampleImage(t, rt, "v2")

	if _, errOut, code := d.run("service", "create", "web", "--image", v1, "--port", "8080", "--git-branch", "../main"); code != 2 || !strings.Contains(errOut, "invalid git branch") {
		t.Fatalf("a bad --git-branch: exit %d, %q", code, errOut)
	}
	if svcs := servicesJSON(t, d); len(svcs) != 0 {
		t.Fatalf("a refused create left services: %v", svcs)
	}
	d.ok("service", "create", "web", "--image", v1, "--port", "8080", "--health-path", "/healthz", "--git-branch", "release/1.x", "--push-builds")
	web := servicesJSON(t, d)["web"]
	if web["git_branch"] != "release/1.x" || web["push_builds"] != true || web["frozen"] != false || web["frozen_at"] != nil {
		t.Fatalf("new service: %v", web)
	}
	d.ok("service", "update", "web", "--git-branch", "main", "--push-builds=false")
	d.ok("deploy", "--service", "web")
	d.ok("deploy", "--service", "web", "--image", v2)
	d.ok("rollback", "--service", "web")

	web = servicesJSON(t, d)["web"]
	if web["frozen"] != true || !strings.HasSuffix(web["frozen_by"].(string), "(cli)") ||
		web["frozen_reason"] != "rollback #3 to #1" || web["frozen_at"] == nil || web["git_branch"] != "main" || web["push_builds"] != false {
		t.Fatalf("after a rollback: %v", web)
	}
	if out := d.ok("services"); !strings.Contains(out, "ACTIVE · frozen") {
		t.Fatalf("clank services does not say frozen:\n%s", out)
	}
	if out := d.ok("unfreeze", "--service", "web"); !strings.Contains(out, "web unfrozen: pushes to main deploy it again") {
		t.Fatalf("unfreeze: %s", out)
	}
	if web = servicesJSON(t, d)["web"]; web["frozen"] != false || web["frozen_by"] != "" {
		t.Fatalf("after unfreeze: %v", web)
	}
	if out := d.ok("unfreeze", "--service", "web"); !strings.Contains(out, "was not frozen") {
		t.Fatalf("unfreeze again: %s", out)
	}
	if _, errOut, code := d.run("unfreeze", "--service", "nope"); code != 1 || !strings.Contains(errOut, "nope") {
		t.Fatalf("unfreeze of an unknown service: exit %d, %q", code, errOut)
	}
}
