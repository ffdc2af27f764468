package e2e

import (
	"strings"
	"testing"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
)

// A rollback across a dev.clank.schema change: the CLI refuses it (exit 1,
// both values, nothing created), --dry-run shows it, and
// --allow-schema-change goes ahead.
func TestCLIRollbackAcrossASchemaChange(t *testing.T) {
	d := startDaemon(t, "", "127.0.0.1:0")
	rt := testdocker.Require(t)
	old := testdocker.SampleImageLabelled(t, rt, "v1", map[string]string{engine.LabelSchema: "2026_11_01_users"})
	cur := testdocker.SampleImageLabelled(t, rt, "v2", map[string]string{engine.LabelSchema: "2026_11_20_orders"})
	d.ok("service", "create", "web", "--image", old, "--port", "8080", "--health-path", "/healthz")
	d.ok("deploy", "--service", "web")
	d.ok("deploy", "--service", "web", "--image", cur)
	if ds := deploymentsJSON(t, d); ds[0]["schema"] != "2026_11_20_orders" || ds[1]["schema"] != "2026_11_01_users" {
		t.Fatalf("recorded schemas: %v and %v", ds[0]["schema"], ds[1]["schema"])
	}

	out, errOut, code := d.run("rollback", "--service", "web", "--dry-run")
	if code != 1 || !strings.Contains(out, `schema changes: "2026_11_20_orders" (ACTIVE) -> "2026_11_01_users"`) ||
		!strings.Contains(errOut, "--allow-schema-change") {
		t.Fatalf("dry run across the schema change: exit %d\n%s%s", code, out, errOut)
	}
	for _, kind := range []string{"rollback", "redeploy"} {
		_, errOut, code = d.run(kind, "--service", "web", "--deployment", "1")
		if code != 1 || !strings.Contains(errOut, "2026_11_20_orders") || !strings.Contains(errOut, "2026_11_01_users") ||
			strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Fatalf("%s across the schema change without the flag: exit %d, %q", kind, code, errOut)
		}
	}
	if n := len(deploymentsJSON(t, d)); n != 2 {
		t.Fatalf("refused rollbacks created deployments: %d, want 2", n)
	}

	out = d.ok("rollback", "--service", "web", "--allow-schema-change")
	if !strings.Contains(out, "ACTIVE") {
		t.Fatalf("rollback --allow-schema-change:\n%s", out)
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from v1" {
		t.Fatalf("web answers %q after the allowed rollback", body)
	}
	if ds := deploymentsJSON(t, d); ds[0]["kind"] != "rollback" || ds[0]["schema"] != "2026_11_01_users" {
		t.Fatalf("the rollback's deployment: %v %v", ds[0]["kind"], ds[0]["schema"])
	}
}
