package ui_test

import (
	"strings"
	"testing"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// A deployment's container goes when it fails or is replaced; the daemon
// keeps the tail of its log, and l shows it, marked as kept from a removed
// container. The detail view says where the logs come from instead of
// offering a container that is gone.
func TestKeptLogsOfRemovedContainers(t *testing.T) {
	t.Parallel()
	w := realdaemon.Start(t) // #1 v1 replaced (drained, removed), #2 v2 ACTIVE
	str := func(s string) *string { return &s }
	w.Update(realdaemon.Service, api.ServiceSpec{Env: map[string]string{"HEALTH": "fail", "TOKEN": "k3pt-s3cr3t"}, DeployTimeout: str("2s")})
	d := w.Act(api.ActionRequest{Kind: "deploy", Service: realdaemon.Service, Image: w.NewImage})
	failed := w.WaitStatus(d.ID, "FAILED", realdaemon.DeployWithin)
	if failed.LogsKeptAt == nil {
		t.Fatalf("FAILED #%d: logs_kept_at is null", failed.Number)
	}

	s := open(t, w.Backend(), ui.RoleAdmin, 120, 36)
	focusDeployments(s)
	s.waitRow(3, "FAILED")

	// #3 FAILED (the cursor's row): its log, kept.
	s.press("l")
	s.waitFor("logs · web #3", "kept log · container removed", "sampleapp v2 listening on", "sampleapp v2 shutting down")
	s.press("g")
	s.waitFor("── kept from removed container " + shortID(failed.ContainerID) + " · removed ")
	s.never("k3pt-s3cr3t")
	s.press("esc")
	s.waitFor("▸ web deployments")

	// Its detail names where its logs come from, and no container.
	s.press("enter")
	s.waitFor("web #3", "Lifecycle", "kept from removed container "+shortID(failed.ContainerID), "l logs")
	if line := lineWith(s.plain(), "container "); strings.Contains(line, "127.0.0.1") {
		t.Fatalf("the detail of a FAILED deployment offers a container: %q", line)
	}
	s.press("esc")

	// #1 was replaced: drained, then removed; its log holds its shutdown.
	s.press("j", "j")
	s.press("l")
	s.waitFor("logs · web #1", "kept log · container removed", "sampleapp v1 shutting down")
	s.press("g")
	s.waitFor("── kept from removed container " + shortID(w.Old.ContainerID))
	s.press("esc")

	// The ACTIVE one's logs are its container's, followed.
	s.press("k")
	s.press("l")
	s.waitFor("logs · web #2", "following", "sampleapp v2 listening on")
	s.never("kept from removed container")
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
