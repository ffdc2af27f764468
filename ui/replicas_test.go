package ui_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// A deployment with three replicas shows 3/3 beside its ACTIVE status and
// each replica (slot, container, port, runtime) in its detail; a replica
// killed behind Clank's back shows there as it goes and comes back, with no
// key pressed.
func TestReplicasOnScreen(t *testing.T) {
	t.Parallel()
	w := realdaemon.New(t)
	image := w.Image("v1")
	three := 3
	w.CreateService("web", image, func(s *api.ServiceSpec) { s.Replicas = &three })
	d := w.Deploy("web", image)
	if len(d.Containers) != 3 {
		t.Fatalf("deployment #1 has containers %+v", d.Containers)
	}
	s := open(t, w.Backend(), ui.RoleViewer, 160, 48)
	s.press("enter")
	s.waitFor("▸ web deployments", "ACTIVE 3/3")
	s.press("enter")
	var lines []string
	for _, r := range d.Containers {
		lines = append(lines, fmt.Sprintf("#%d %s on 127.0.0.1:%d · healthy", r.Slot, r.ContainerID[:12], r.HostPort))
	}
	s.waitFor(append([]string{"web #1", "3/3 healthy"}, lines...)...)

	victim := d.Containers[1]
	if _, err := w.Runtime.Client().ContainerKill(context.Background(), victim.ContainerID, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		t.Fatal(err)
	}
	s.waitFor("2/3 healthy", fmt.Sprintf("#1 %s on 127.0.0.1:", victim.ContainerID[:12]), "crashed: exit 137")
	s.waitFor("3/3 healthy")
}
