package swarm_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/store"
)

// TestSwarmThreeReplicasServe: a deployment of a service at 3 replicas is
// one Swarm service with 3 tasks, each on its own published port, and the
// router sends requests to all three.
func TestSwarmThreeReplicasServe(t *testing.T) {
	h := newHarness(t)
	h.serviceN("web", h.image("web", "v1"), 3)
	d := h.act(deploy("web"))
	if d.Status != store.StatusActive {
		t.Fatalf("#1: %s (%s)", d.Status, d.FailureReason)
	}
	tasks := h.tasks(d)
	ports := map[int]bool{}
	for _, tk := range tasks {
		ports[tk.Port] = true
	}
	if len(tasks) != 3 || len(ports) != 3 {
		t.Fatalf("tasks %+v: want 3 on 3 ports", tasks)
	}
	for range 60 {
		if code, body, err := h.get("web", "/"); err != nil || code != http.StatusOK || body != "hello from v1" {
			t.Fatalf("through the router: %d %q %v", code, body, err)
		}
	}
	for _, tk := range tasks {
		if n := h.router.Responses(tk.Backend()); n[1] == 0 {
			t.Fatalf("task %d (%s) answered nothing of 60 requests: %v", tk.Slot, tk.Backend(), n)
		}
	}
	if rs := h.eng.Runtime(d.ID); rs == nil || len(rs.Replicas) != 3 || rs.State != engine.RuntimeHealthy {
		t.Fatalf("runtime %+v", rs)
	}
}

// TestSwarmRollbackKeepsTheServicesCount: a rollback runs at the service's
// current replica count, not at the one its target ran with.
func TestSwarmRollbackKeepsTheServicesCount(t *testing.T) {
	h := newHarness(t)
	v1, v2 := h.image("web", "v1"), h.image("web", "v2")
	h.serviceN("web", v1, 1)
	d1 := h.act(deploy("web"))
	d2 := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2})
	if d1.Status != store.StatusActive || d2.Status != store.StatusActive || d1.Replicas != 1 {
		t.Fatalf("#1 %s with %d replicas, #2 %s", d1.Status, d1.Replicas, d2.Status)
	}
	// clank scale: #2 runs 3 tasks in place, and 3 is the service's count.
	h.scale("web", 3)
	var now []engine.Task
	h.eventually(60*time.Second, func() string { return fmt.Sprintf("#2's tasks %+v, runtime %+v", now, h.eng.Runtime(d2.ID)) }, func() bool {
		now = h.tasks(d2)
		rs := h.eng.Runtime(d2.ID)
		return len(now) == 3 && rs != nil && rs.Healthy() == 3
	})
	d3 := h.act(engine.Request{Kind: store.KindRollback, Service: "web", Deployment: d1.ID})
	if d3.Status != store.StatusActive {
		t.Fatalf("rollback #3: %s (%s)", d3.Status, d3.FailureReason)
	}
	if got := h.tasks(d3); len(got) != 3 {
		t.Fatalf("the rollback to #1 (1 replica) runs %d tasks: want the service's 3", len(got))
	}
	if _, body, _ := h.get("web", "/"); body != "hello from v1" {
		t.Fatalf("after the rollback: %q", body)
	}
}
