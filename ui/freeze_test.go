package ui_test

import (
	"context"
	"testing"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// A rollback freezes pushes: the services list says so, a viewer's u is
// refused on the spot, and an admin's u lifts the freeze in the daemon.
func TestFrozenServiceAndTheUnfreezeKey(t *testing.T) {
	w := realdaemon.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rb, err := w.Client.Act(ctx, api.ActionRequest{Kind: "rollback", Service: realdaemon.Service, TriggeredBy: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	w.WaitStatus(rb.ID, "ACTIVE", realdaemon.DeployWithin)
	frozen := func() bool {
		svc, err := w.Client.Service(ctx, realdaemon.Service, false)
		if err != nil {
			t.Fatal(err)
		}
		return svc.Frozen
	}
	if !frozen() {
		t.Fatal("the rollback did not freeze pushes")
	}

	viewer := open(t, w.Client, ui.RoleViewer, 160, 48)
	viewer.waitFor("ACTIVE · frozen")
	viewer.press("u")
	viewer.waitFor("read-only: viewer role: ask an admin to unfreeze web")
	if !frozen() {
		t.Fatal("a viewer's u lifted the freeze")
	}

	admin := open(t, w.Client, ui.RoleAdmin, 160, 48)
	admin.waitFor("ACTIVE · frozen")
	admin.press("u")
	admin.waitFor("web unfrozen: pushes deploy it again")
	if frozen() {
		t.Fatal("the admin's u left the service frozen")
	}
	admin.waitGone("· frozen")
	admin.press("u")
	admin.waitFor("web is not frozen: pushes deploy it")
}
