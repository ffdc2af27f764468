package ssh_test

import (
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// Over SSH against the real daemon: a viewer's r and y reach nothing; an
// admin's create a real rollback recorded under the admin's key.
func TestSSHRollbackOnTheRealDaemon(t *testing.T) {
	w := realdaemon.Start(t)
	dir := t.TempDir()
	admin, viewer := newKey(t), newKey(t)
	writeAuthorizedKeys(t, dir, authLine(admin, `role="admin"`), authLine(viewer, `role="viewer"`))
	srv := serveOn(t, dir, w.Client)

	t.Run("viewer", func(t *testing.T) {
		tm := srv.open(t, "bob", viewer)
		tm.waitFor("testhost", realdaemon.Service, "ACTIVE", "viewer")
		tm.press("r")
		tm.waitFor("read-only: viewer role")
		tm.press("y")
		w.StaysAt(2)
		if got := w.Get("/"); got != "hello from v2" {
			t.Fatalf("after the viewer's r, y the router serves %q, want hello from v2", got)
		}
	})

	t.Run("admin", func(t *testing.T) {
		tm := srv.open(t, "alice", admin)
		fp := gossh.FingerprintSHA256(admin.PublicKey())
		tm.waitFor("testhost", realdaemon.Service, "ACTIVE", "admin")
		tm.press("r")
		tm.waitFor("Changes against ACTIVE #2", "Cancel")
		drawn := tm.size()
		tm.press("y")

		rb := w.Newest(2)
		if rb.Kind != "rollback" || rb.SourceDeploymentID == nil || *rb.SourceDeploymentID != w.Old.ID ||
			!strings.Contains(rb.TriggeredBy, fp) || !strings.HasPrefix(rb.TriggeredBy, "alice") {
			t.Fatalf("new deployment = #%d %s of %v by %q; want a rollback of %s (#1) by alice (%s)",
				rb.Number, rb.Kind, rb.SourceDeploymentID, rb.TriggeredBy, w.Old.ID, fp)
		}
		w.WaitStatus(rb.ID, "ACTIVE", 30*time.Second)
		if got := w.Get("/"); got != "hello from v1" {
			t.Fatalf("after the admin's rollback the router serves %q, want hello from v1", got)
		}
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(tm.since(drawn), squash("#3 is ACTIVE")); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the admin's modal never showed #3 is ACTIVE; it showed:\n%s", tm.since(drawn))
			}
		}
	})
}
