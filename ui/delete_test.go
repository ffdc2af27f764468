package ui_test

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// D deletes the selected service through the real daemon, behind a modal
// that needs the service's name typed; a viewer's D reaches nothing.
func TestDeleteServiceModalNeedsTheName(t *testing.T) {
	w := realdaemon.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	services := func() int {
		svcs, err := w.Client.Services(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(svcs)
	}

	viewer := open(t, w.Client, ui.RoleViewer, 160, 48)
	viewer.press("D")
	viewer.waitFor("Delete service web", "read-only: viewer role")
	viewer.press("y")
	viewer.handled()
	if services() != 1 {
		t.Fatal("a viewer's D, y deleted the service")
	}

	s := open(t, w.Client, ui.RoleAdmin, 160, 48)
	s.press("D")
	s.waitFor("Delete service web", "stops web's containers", "history and images stay", "Type web to confirm")
	s.press("y", "w", "e")
	s.waitFor("Type web to confirm: ywe")
	if frame := s.handled(); strings.Contains(frame, "starting") || services() != 1 {
		t.Fatal("y before the name deleted the service")
	}
	for range 3 {
		s.tm.Send(tea.KeyPressMsg{Code: tea.KeyBackspace})
	}
	s.press("w", "e", "b")
	s.waitFor("Type web to confirm: web ✓")
	s.press("y")
	s.waitFor("✓ web deleted: 1 container(s) removed", "2 deployment(s) stay as history")
	if services() != 0 {
		t.Fatal("the service is still there after the confirmed delete")
	}
	s.press("enter")
	s.waitFor("no services yet")
}
