package ssh_test

import (
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// Over SSH against the real daemon: a viewer's keys reach nothing (with a
// role="viewer" key and with a key that has no role); an admin's r and y
// make a real rollback recorded under the admin's key.
func TestSSHRollbackOnTheRealDaemon(t *testing.T) {
	w := realdaemon.Start(t)
	dir := t.TempDir()
	admin, viewer, plain := newKey(t), newKey(t), newKey(t)
	writeAuthorizedKeys(t, dir, authLine(admin, `role="admin"`), authLine(viewer, `role="viewer"`), authLine(plain, ""))
	b := w.Backend()
	srv := serveOn(t, dir, b)
	before := w.Snapshot()

	for name, k := range map[string]gossh.Signer{"viewer": viewer, "no role": plain} {
		t.Run(name, func(t *testing.T) {
			tm := srv.open(t, "bob", k)
			tm.waitFor("testhost", realdaemon.Service, "ACTIVE", "viewer")
			tm.press("\r")
			tm.waitLine("#1 ", "↺") // the badge, as a glyph at 80 columns
			tm.press("jr")
			tm.waitFor("read-only: viewer role")
			tm.press("y")
			tm.press("\x1b")
			tm.waitGone("read-only")
			tm.press("R")
			tm.waitFor("with the current config", "read-only: viewer role")
			tm.press("y")
			tm.press("\x1b")
			tm.waitGone("read-only")
			// A later answer of the daemon, asked after every key above:
			// the detail of #1 and its lifecycle.
			tm.press("\r")
			tm.waitFor("web #1", "Lifecycle", "HEALTH_CHECKING")
			if plans, acts := b.Plans.Load(), b.Acts.Load(); plans+acts != 0 {
				t.Fatalf("a viewer reached the daemon: %d plans, %d acts", plans, acts)
			}
			w.CreatedNothing(before)
			if got := w.Get(realdaemon.Service, "/"); got != "hello from v2" {
				t.Fatalf("after the viewer's keys the router serves %q, want hello from v2", got)
			}
		})
	}

	t.Run("admin", func(t *testing.T) {
		tm := srv.open(t, "alice", admin)
		fp := gossh.FingerprintSHA256(admin.PublicKey())
		tm.waitFor("testhost", realdaemon.Service, "ACTIVE", "admin")
		tm.press("r")
		tm.waitFor("Changes against ACTIVE #2", "Cancel")
		tm.press("y")

		rb := w.Newest(realdaemon.Service, 2)
		if rb.Kind != "rollback" || rb.SourceDeploymentID == nil || *rb.SourceDeploymentID != w.Old.ID ||
			rb.TriggeredBy != "alice ("+fp+")" {
			t.Fatalf("new deployment = #%d %s of %v by %q; want a rollback of %s (#1) by alice (%s)",
				rb.Number, rb.Kind, rb.SourceDeploymentID, rb.TriggeredBy, w.Old.ID, fp)
		}
		tm.waitFor("✓ #3 is ACTIVE")
		if got := w.Get(realdaemon.Service, "/"); got != "hello from v1" {
			t.Fatalf("after the admin's rollback the router serves %q, want hello from v1", got)
		}
		if n := len(w.Deployments(realdaemon.Service)); n != 3 || b.Acts.Load() != 1 {
			t.Fatalf("%d deployments after one rollback (%d acts), want 3", n, b.Acts.Load())
		}
		if !strings.Contains(tm.screen(), "alice") {
			t.Fatalf("the header does not name alice:\n%s", tm.screen())
		}
	})
}
