package ssh_test

import (
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// The daemon, not the screen, refuses a viewer: sessions open as admins, then
// their keys lose the role in authorized_keys (demoted, or removed). Their
// screens still say admin and let r and y through; every call now carries
// the viewer role, so the daemon refuses the rollback, the modal shows its
// reason, and nothing is created. Over a real SSH client, against the real
// daemon through its socket, as `clank serve` wires them.
func TestDaemonRefusesAViewerWhateverTheScreenShows(t *testing.T) {
	w := realdaemon.Start(t)
	dir := t.TempDir()
	demoted, removed, other := newKey(t), newKey(t), newKey(t)
	writeAuthorizedKeys(t, dir, authLine(demoted, `role="admin"`), authLine(removed, `role="admin"`), authLine(other, `role="admin"`))
	srv := serveOn(t, dir, w.Client)

	sessions := map[string]*term{}
	for name, key := range map[string]gossh.Signer{"dora": demoted, "remy": removed} {
		tm := srv.open(t, name, key)
		tm.waitFor("testhost", realdaemon.Service, "ACTIVE", "admin")
		sessions[name] = tm
	}
	writeAuthorizedKeys(t, dir, authLine(demoted, `role="viewer"`), authLine(other, `role="admin"`))

	for _, name := range []string{"dora", "remy"} {
		t.Run(name, func(t *testing.T) {
			tm := sessions[name]
			tm.press("r")
			tm.waitFor("Changes against ACTIVE #2", "Cancel") // a viewer may read the plan
			before := w.Snapshot()
			tm.press("y")
			tm.waitFor("Refused: forbidden: "+name, "is a viewer")
			// The refusal is the answer to the call: nothing was created.
			w.CreatedNothing(before)
			if got := w.Get(realdaemon.Service, "/"); got != "hello from v2" {
				t.Fatalf("after %s's refused rollback the router serves %q", name, got)
			}
		})
	}
}
