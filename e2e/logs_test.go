package e2e

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/internal/testdocker"
)

// keptHeader is the line `clank logs` prints above a removed container's
// kept log.
var keptHeader = regexp.MustCompile(`^-- kept from removed container ([0-9a-f]{12}), removed \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC(; older output was not kept)? --$`)

// The logs of a FAILED deployment and of a replaced one outlive their
// containers: `clank logs` prints what the daemon kept when it removed them,
// under a header that says so, bounded by --keep-logs; env values the app
// did not print never appear.
func TestLogsKeptFromRemovedContainers(t *testing.T) {
	d := startDaemonWith(t, "", "127.0.0.1:0", []string{"CLANK_KEEP_LOGS=3"})
	rt := testdocker.Require(t)
	v1 := testdocker.SampleImage(t, rt, "v1")
	v2 := testdocker.SampleImage(t, rt, "v2")

	d.ok("service", "create", "web", "--image", v1, "--port", "8080", "--env", "SECRET=k3pt-hunter2",
		"--health-path", "/healthz", "--health-interval", "200ms", "--keep-warm=false")
	d.ok("deploy", "--service", "web")
	d.mustGet("web.localhost", "/?first")
	d.mustGet("web.localhost", "/?second")
	d.ok("deploy", "--service", "web", "--image", v2)

	// #1 replaced: drained, then removed. Its last three lines of four, its
	// shutdown included (the container is stopped before its log is read).
	waitFor(t, 30*time.Second, func() bool { return deploymentsJSON(t, d)[1]["status"] == "INACTIVE" })
	out, errOut, code := d.run("logs", "--service", "web", "--deployment", "1")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 0 || len(lines) != 4 || !keptHeader.MatchString(lines[0]) || !strings.Contains(out, "older output was not kept") ||
		!strings.Contains(lines[1], "GET /?first") || !strings.Contains(lines[2], "GET /?second") || !strings.Contains(lines[3], "sampleapp v1 shutting down") {
		t.Fatalf("logs of replaced #1: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	deps := deploymentsJSON(t, d)
	if deps[1]["logs_kept_at"] == nil || deps[0]["logs_kept_at"] != nil {
		t.Fatalf("logs_kept_at: #1 %v, #2 (ACTIVE) %v", deps[1]["logs_kept_at"], deps[0]["logs_kept_at"])
	}
	// -t: each line begins with its time, kept with it.
	stamped := strings.Split(strings.TrimSuffix(d.ok("logs", "--service", "web", "--deployment", "1", "-t"), "\n"), "\n")
	for _, l := range stamped[1:] {
		if _, rest, ok := api.SplitLogTimestamp(l); !ok || !slices.Contains(lines, rest) {
			t.Fatalf("logs -t of #1: line %q, want a time and a line of\n%s", l, out)
		}
	}
	if len(stamped) != len(lines) {
		t.Fatalf("logs -t of #1: %d lines, want %d", len(stamped), len(lines))
	}
	// -f on a removed container prints what was kept and ends.
	if out, _, code := runClankWithin(t, 30*time.Second, d.dataDir, "logs", "--service", "web", "--deployment", "1", "-f"); code != 0 || !strings.Contains(out, "shutting down") {
		t.Fatalf("logs -f of replaced #1: exit %d\n%s", code, out)
	}

	// #3 FAILED: its health check answers 500. The failure's log is kept.
	d.ok("env", "set", "--service", "web", "HEALTH=fail")
	d.ok("service", "update", "web", "--deploy-timeout", "2s")
	if _, errOut, code := d.run("deploy", "--service", "web"); code != 1 {
		t.Fatalf("a deploy with HEALTH=fail: exit %d, %s", code, errOut)
	}
	out, errOut, code = d.run("logs", "--service", "web", "--deployment", "3")
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	m := keptHeader.FindStringSubmatch(lines[0])
	if code != 0 || m == nil || !strings.Contains(out, "sampleapp v2 listening") || !strings.Contains(out, "sampleapp v2 shutting down") {
		t.Fatalf("logs of FAILED #3: exit %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	if id, _ := deploymentsJSON(t, d)[0]["container_id"].(string); !strings.HasPrefix(id, m[1]) {
		t.Fatalf("the header names container %s, #3 ran %s", m[1], id)
	}
	// The ACTIVE one's logs are its container's: no header.
	if out := d.ok("logs", "--service", "web"); strings.Contains(out, "kept from removed container") || !strings.Contains(out, "sampleapp v2 listening") {
		t.Fatalf("logs of the ACTIVE deployment:\n%s", out)
	}
	if strings.Contains(d.log.String(), "k3pt-hunter2") {
		t.Fatalf("an env value reached the daemon's log:\n%s", d.log)
	}

	// A bad bound is refused before anything starts.
	if _, errOut, code := runClankWithin(t, 30*time.Second, t.TempDir(), "serve", "--keep-logs-size", "lots"); code != 2 || !strings.Contains(errOut, "invalid --keep-logs-size") {
		t.Fatalf("serve --keep-logs-size lots: exit %d, %q", code, errOut)
	}
}
