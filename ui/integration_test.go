package ui_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// These tests act: each has a World of its own (realdaemon.Start: web's
// v1 deployed as #1, then v2 as #2, ACTIVE), so they run in parallel: most
// of their time is spent waiting for containers.

// waitRow waits until the deployments table shows deployment n with status.
func (s *screen) waitRow(n int, status string) {
	s.t.Helper()
	row := "#" + strconv.Itoa(n) + " "
	s.waitUntil(func(frame string) string {
		if paneLine(frame, row, status) == "" {
			return "never showed " + row + status
		}
		return ""
	})
}

// focusDeployments opens web's deployments (the only service) and waits for
// its rows: a key pressed before they came would act on no row.
func focusDeployments(s *screen) {
	s.press("enter")
	s.waitDeployments("web")
}

// r from the services list rolls web back to the deployment before the
// ACTIVE one, through the API to the engine: a real rollback, real
// containers, the router switched, and the modal follows it to ACTIVE.
func TestRollbackFollowedToActive(t *testing.T) {
	t.Parallel()
	w := realdaemon.Start(t)
	s := open(t, w.Backend(), ui.RoleAdmin, 80, 24)

	s.press("r")
	s.waitFor("Roll back web to #1", "Changes against ACTIVE #2", "Cancel")
	// The image change shows both references whole: on one line, or (when
	// they are long) the new one on the next line.
	if lineWith(s.plain(), "image ", w.NewImage) == "" || lineWith(s.plain(), "→ "+w.OldImage+"@sha256:") == "" {
		t.Fatalf("the diff does not show the image change %s → %s whole:\n%s", w.NewImage, w.OldImage, s.plain())
	}
	s.press("y")

	// triggered_by is who the daemon says called (this process, the
	// socket's owner), not the dashboard's Actor.
	rb := w.Newest(realdaemon.Service, 2)
	if rb.Kind != "rollback" || rb.SourceDeploymentID == nil || *rb.SourceDeploymentID != w.Old.ID ||
		rb.Image != w.OldImage || rb.ImageDigest != w.Old.ImageDigest || !strings.HasSuffix(rb.TriggeredBy, " (cli)") {
		t.Fatalf("new deployment = #%d %s of %v, image %s@%s by %q; want a rollback of %s (#1) to %s@%s by the socket's owner (cli)",
			rb.Number, rb.Kind, rb.SourceDeploymentID, rb.Image, rb.ImageDigest, rb.TriggeredBy,
			w.Old.ID, w.OldImage, w.Old.ImageDigest)
	}
	s.waitForModal("✓ #3 is ACTIVE")
	if got := w.Get(realdaemon.Service, "/"); got != "hello from v1" {
		t.Fatalf("after the rollback the router serves %q, want hello from v1", got)
	}
	s.waitForModal("#3 rollback of #1")
	s.waitForModal("#3 is ACTIVE") // the engine's own lifecycle line
	s.waitFor("ACTIVE · frozen")   // a rollback freezes pushes
	s.golden()
	s.press("enter") // Close
	s.waitGone("#3 is ACTIVE")
}

// Every way out of the modal creates nothing. Cancelling has no answer to
// wait for, so the test ends with a confirmed rollback, followed to ACTIVE:
// an action any cancel had started would have reached the daemon before it,
// and shown as a deployment too many (or had this one refused).
func TestCancelCreatesNothing(t *testing.T) {
	t.Parallel()
	w := realdaemon.Start(t)
	b := w.Backend()
	s := open(t, b, ui.RoleAdmin, 80, 24)
	focusDeployments(s)
	for _, keys := range [][]string{{"esc"}, {"n"}, {"enter"}, {"tab", "tab", "enter"}} {
		s.press("j", "r")
		s.waitFor("Roll back web to #1", "Changes against ACTIVE #2")
		s.press(keys...)
		s.waitGone("Changes against")
		if frame := s.handled(); strings.Contains(frame, "starting") || strings.Contains(frame, "#3") {
			t.Fatalf("after %v the screen shows an action:\n%s", keys, frame)
		}
	}
	s.press("r")
	s.waitFor("Changes against ACTIVE #2")
	s.press("tab", "enter") // Cancel is focused: tab moves to Roll back
	s.waitForModal("✓ #3 is ACTIVE")

	if a := b.Acts.Load(); a != 1 {
		t.Fatalf("the dashboard acted %d times, want once", a)
	}
	w.Settle(realdaemon.Service)
	ds := w.Deployments(realdaemon.Service)
	if len(ds) != 3 || ds[0].Kind != "rollback" || ds[0].Status != "ACTIVE" {
		t.Fatalf("deployments after four cancels and one rollback: %+v", ds)
	}
	if cs := w.Containers(); len(cs) != 1 || !strings.HasPrefix(cs[0], ds[0].ContainerID) {
		t.Fatalf("containers %v, want only the rollback's %s", cs, ds[0].ContainerID)
	}
}

// R redeploys a deployment's image with the current config, d deploys the
// service's current config; the modal follows each to its end: ACTIVE, and
// FAILED with the engine's reason (and then, healthy again, ACTIVE).
func TestRedeployAndDeployFollowedToTheirEnd(t *testing.T) {
	t.Parallel()
	w := realdaemon.Start(t)
	s := open(t, w.Backend(), ui.RoleAdmin, 80, 24)
	focusDeployments(s)
	s.press("j", "R")
	s.waitFor("Redeploy web #1 with the current config", "Changes against ACTIVE #2")
	s.press("y")
	s.waitForModal("#3 redeploy of #1")
	s.waitForModal("✓ #3 is ACTIVE")
	if got := w.Get(realdaemon.Service, "/"); got != "hello from v1" {
		t.Fatalf("after redeploying #1 the router serves %q, want hello from v1", got)
	}
	s.press("esc")
	s.waitGone("#3 is ACTIVE")

	// The app now answers its health check with 500: a deploy fails.
	deadline := "2s"
	w.Update(realdaemon.Service, api.ServiceSpec{Env: map[string]string{"HEALTH": "fail"}, DeployTimeout: &deadline})
	s.press("d")
	s.waitFor("Deploy web (its current image and config)", "Changes against ACTIVE #3")
	s.press("y")
	s.waitForModal("#4 deploy")
	// Each new result of the health check shows as it comes, with its attempt.
	s.waitForModal("GET /healthz → HTTP 500 (attempt")
	s.waitForModal("of 10)") // a 2s deploy timeout at 200ms
	failed := w.WaitStatus(w.Newest(realdaemon.Service, 3).ID, "FAILED", realdaemon.DeployWithin)
	if !strings.Contains(failed.FailureReason, "health check GET /healthz did not pass within 2s") {
		t.Fatalf("the engine's reason: %q", failed.FailureReason)
	}
	s.waitForModal("✗ #4 FAILED: " + failed.FailureReason)
	if got := w.Get(realdaemon.Service, "/"); got != "hello from v1" {
		t.Fatalf("after a failed deploy the router serves %q, want hello from v1 still", got)
	}
	s.press("esc")
	s.waitGone("#4 FAILED")

	// Healthy again: d deploys the service's image (v2) to ACTIVE.
	w.Update(realdaemon.Service, api.ServiceSpec{UnsetEnv: []string{"HEALTH"}})
	s.press("d")
	s.waitFor("Deploy web (its current image and config)", "Changes against ACTIVE #3")
	s.press("y")
	s.waitForModal("#5 deploy")
	s.waitForModal("✓ #5 is ACTIVE")
	if got := w.Get(realdaemon.Service, "/"); got != "hello from v2" {
		t.Fatalf("after deploying web's image the router serves %q, want hello from v2", got)
	}
}

// Statuses change on screen as they change in the engine, with no key
// pressed and nothing read again: someone else (the CLI) rolls back.
func TestLiveStatusChangesWithoutAKeyOrAReread(t *testing.T) {
	t.Parallel()
	w := realdaemon.Start(t)
	b := w.Backend()
	s := open(t, b, ui.RoleAdmin, 160, 48)
	s.waitFor("web deployments")
	s.waitRow(2, "ACTIVE")
	reads := b.DeploymentsCalls.Load()

	rb := w.Act(api.ActionRequest{Kind: "rollback", Service: realdaemon.Service, Deployment: w.Old.ID, TriggeredBy: "dave"})
	s.waitFor("rollback of #1", "dave")
	w.WaitStatus(rb.ID, "ACTIVE", realdaemon.DeployWithin)
	s.waitRow(3, "● ACTIVE")
	w.Settle(realdaemon.Service)
	s.waitRow(2, "○ INACTIVE")
	if got := b.DeploymentsCalls.Load(); got != reads {
		t.Fatalf("live updates re-read deployments %d times", got-reads)
	}
}

// An image removed under the dashboard (docker rmi): the badge of the
// deployments that ran it drops live, with no key pressed; and a rollback
// planned before the removal and confirmed after it is refused by the engine
// (the modal's plan-ok-then-act-refused path), creating nothing.
func TestImageRemovedUnderTheDashboard(t *testing.T) {
	t.Parallel()
	w := realdaemon.Start(t)
	w.Deploy(realdaemon.Service, w.Image("v3")) // #3; #1 and #2 can be rolled back to
	s := open(t, w.Backend(), ui.RoleAdmin, 160, 48)
	s.waitFor("web deployments")
	s.waitRow(1, "Rollback capable")
	s.waitRow(2, "Rollback capable")

	w.RemoveImage(w.OldImage)
	s.waitRow(1, "image gone")
	if line := paneLine(s.plain(), "#2 "); !strings.Contains(line, "Rollback capable") {
		t.Fatalf("#2 lost its badge too: %q", line)
	}

	s.press("r")
	s.waitFor("Roll back web to #2", "Changes against ACTIVE #3")
	w.Settle(realdaemon.Service) // #2's container is gone: only its image is left
	before := w.Snapshot()
	w.RemoveImage(w.NewImage)
	s.press("y")
	refusal := w.Plan(api.ActionRequest{Kind: "rollback", Service: realdaemon.Service, Deployment: w.Current.ID}).Refusal
	if !strings.Contains(refusal, "is gone") {
		t.Fatalf("the daemon's plan now: %q, want the image gone", refusal)
	}
	s.waitForModal("✗ Refused: " + refusal)
	s.waitForModal("Nothing was created.")
	// The refusal on screen is the daemon's answer to Act: it has finished.
	w.CreatedNothing(before)
	s.press("enter")
	s.waitRow(2, "image gone")
}
