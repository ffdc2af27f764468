package ui_test

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// openOn runs an admin's dashboard on any Backend (a real daemon's API
// client here), with the real clock, and waits for the services to show.
func openOn(t *testing.T, b ui.Backend, w, h int) *screen {
	t.Helper()
	return openOnAs(t, b, ui.RoleAdmin, w, h)
}

// openOnAs is openOn with a role.
func openOnAs(t *testing.T, b ui.Backend, role ui.Role, w, h int) *screen {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts := ui.Options{Context: ctx, Role: role, Actor: "tester", ColorProfile: colorprofile.ANSI256}
	rec := &recorder{Model: ui.New(b, opts)}
	tm := teatest.NewTestModel(t, rec, teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(tea.WithColorProfile(opts.ColorProfile)))
	s := &screen{t: t, tm: tm, rec: rec}
	t.Cleanup(func() {
		_ = tm.Quit()
		tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	})
	s.waitFor(realdaemon.Service, "ACTIVE")
	return s
}

// lineWith is the frame's first line that holds every one of parts.
func lineWith(frame string, parts ...string) string {
	for line := range strings.Lines(frame) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return line
		}
	}
	return ""
}

// The modal's y goes through the API to the engine: a real rollback, real
// containers, the router switched; Cancel, esc and n leave nothing behind.
func TestModalRollsBackThroughTheRealEngine(t *testing.T) {
	w := realdaemon.Start(t)
	s := openOn(t, w.Client, 160, 48)

	// The services list has focus: r rolls web back to the deployment
	// before the ACTIVE one.
	s.press("r")
	s.waitFor("Roll back web to #1", "Changes against ACTIVE #2", "Cancel")
	// The image change shows both references whole: on one line, or (when
	// they are long) the new one on the next line.
	if line := lineWith(s.plain(), "image ", w.NewImage); line == "" {
		t.Fatalf("the diff shows no image change from %s:\n%s", w.NewImage, s.plain())
	}
	if lineWith(s.plain(), "→ "+w.OldImage+"@sha256:") == "" {
		t.Errorf("the diff does not show the image rolled back to, %s, whole:\n%s", w.OldImage, s.plain())
	}
	s.press("y")

	// triggered_by is who the daemon says called (this process, the
	// socket's owner), not the dashboard's Actor.
	rb := w.Newest(2)
	if rb.Kind != "rollback" || rb.SourceDeploymentID == nil || *rb.SourceDeploymentID != w.Old.ID ||
		rb.Image != w.OldImage || rb.ImageDigest != w.Old.ImageDigest || !strings.HasSuffix(rb.TriggeredBy, " (cli)") {
		t.Fatalf("new deployment = #%d %s of %v, image %s@%s by %q; want a rollback of %s (#1) to %s@%s by the socket's owner (cli)",
			rb.Number, rb.Kind, rb.SourceDeploymentID, rb.Image, rb.ImageDigest, rb.TriggeredBy,
			w.Old.ID, w.OldImage, w.Old.ImageDigest)
	}
	w.WaitStatus(rb.ID, "ACTIVE", 30*time.Second)
	if got := w.Get("/"); got != "hello from v1" {
		t.Fatalf("after the rollback the router serves %q, want hello from v1", got)
	}
	s.waitFor("#3 is ACTIVE")
	s.press("enter") // Close
	waitGone(s, "#3 is ACTIVE")

	// Now the previous deployment is #2. Each way out of the modal creates
	// nothing: no deployment, and web keeps serving v1.
	for _, k := range []string{"esc", "n", "enter"} {
		s.press("r")
		s.waitFor("Roll back web to #2", "Changes against ACTIVE #3")
		s.press(k)
		waitGone(s, "Changes against")
		w.StaysAt(3)
	}
	if got := w.Get("/"); got != "hello from v1" {
		t.Fatalf("after cancelling the router serves %q, want hello from v1", got)
	}
}
