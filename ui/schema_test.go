package ui_test

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// A rollback across a schema change: the modal shows both schemas in red and
// y does nothing until the service's name is typed; then the real engine
// rolls back.
func TestSchemaChangeModalNeedsTheServiceName(t *testing.T) {
	w := realdaemon.StartWith(t, realdaemon.Setup{
		OldLabels: map[string]string{engine.LabelSchema: "0041"},
		NewLabels: map[string]string{engine.LabelSchema: "0042"},
	})
	b := w.Backend()
	s := open(t, b, ui.RoleAdmin, 160, 48)

	s.press("r")
	s.waitFor("Roll back web to #1", `The schema changes: "0042" (ACTIVE) → "0041"`, "Type web to confirm")
	red, _, _ := strings.Cut(ui.DefaultStyles().Error.Render("X"), "X")
	if frame, _ := s.rec.last(); red == "" || !strings.Contains(frame, red+`⚠ The schema changes: "0042" (ACTIVE) → "0041"`) {
		t.Fatalf("the schema change is not drawn in red (%q):\n%q", red, frame)
	}

	// y and n are letters of a name here: neither confirms nor cancels.
	s.press("y", "n")
	s.waitFor("Type web to confirm: yn")
	s.tm.Send(tea.KeyPressMsg{Code: tea.KeyBackspace})
	s.tm.Send(tea.KeyPressMsg{Code: tea.KeyBackspace})
	s.press("w", "e")
	s.waitFor("Type web to confirm: we")
	s.press("y") // not yet the whole name: typed, not confirmed
	s.waitFor("Type web to confirm: wey")
	if frame := s.handled(); strings.Contains(frame, "starting") || b.Acts.Load() != 0 {
		t.Fatalf("y before the whole name confirmed (%d acts):\n%s", b.Acts.Load(), frame)
	}
	s.tm.Send(tea.KeyPressMsg{Code: tea.KeyBackspace})
	s.press("b")
	s.waitFor("Type web to confirm: web ✓")
	s.press("y")

	// The one rollback the daemon records is this confirmed one: had y or
	// n confirmed before the name was whole, that would be here first.
	rb := w.Newest(realdaemon.Service, 2)
	if rb.Kind != "rollback" || rb.SourceDeploymentID == nil || *rb.SourceDeploymentID != w.Old.ID || rb.Schema != "0041" {
		t.Fatalf("new deployment = #%d %s of %v, schema %q; want a rollback to #1 with schema 0041",
			rb.Number, rb.Kind, rb.SourceDeploymentID, rb.Schema)
	}
	w.WaitStatus(rb.ID, "ACTIVE", realdaemon.DeployWithin)
	if n := len(w.Deployments(realdaemon.Service)); n != 3 || b.Acts.Load() != 1 {
		t.Fatalf("%d deployments, %d acts after one confirmed rollback; want 3 and 1", n, b.Acts.Load())
	}
	if got := w.Get(realdaemon.Service, "/"); got != "hello from v1" {
		t.Fatalf("after the rollback the router serves %q, want hello from v1", got)
	}
}
