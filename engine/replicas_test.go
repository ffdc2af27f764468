package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// scaled sets service's replica count for its next deployments.
func (h *harness) scaled(service string, n int) {
	h.t.Helper()
	if _, err := h.eng.UpdateService(context.Background(), service, engine.ServicePatch{Replicas: &n}); err != nil {
		h.t.Fatal(err)
	}
}

// hostnames asks the service, through the router, which container answers
// (the sample app's HOSTNAME is its container's short id) until it has seen
// want different ones or tries runs out; it returns those it saw.
func (h *harness) hostnames(service string, want, tries int) map[string]int {
	h.t.Helper()
	seen := map[string]int{}
	for i := 0; i < tries && len(seen) < want; i++ {
		code, body, err := h.get(service, "/env/HOSTNAME")
		if err != nil || code != http.StatusOK {
			h.t.Fatalf("GET /env/HOSTNAME through the router: %d %q %v", code, body, err)
		}
		seen[body]++
	}
	return seen
}

// sameContainers says whether hostnames are exactly the containers of d.
func sameContainers(d store.Deployment, hostnames map[string]int) bool {
	if len(hostnames) != len(d.Containers) {
		return false
	}
	for _, r := range d.Containers {
		if hostnames[r.ContainerID[:12]] == 0 {
			return false
		}
	}
	return true
}

// healthyReplicas waits until deployment id's supervisors say n replicas
// are healthy, and returns its runtime then.
func (h *harness) healthyReplicas(id string, n int, within time.Duration) *engine.RuntimeState {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		rs := h.eng.Runtime(id)
		if rs != nil && len(rs.Replicas) == n && rs.Healthy() == n {
			return rs
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("deployment %s: runtime %+v, want %d healthy replicas within %s", id, rs, n, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// routeLog is the real router with the time of each route change the
// engine makes, so that a test can say when a backend left the route.
type routeLog struct {
	engine.Router
	mu      sync.Mutex
	changes []routeChange
}

type routeChange struct {
	at       time.Time
	backends []string
}

func (l *routeLog) SetRoute(service string, domains []string, backends ...string) []string {
	prev := l.Router.SetRoute(service, domains, backends...)
	l.mu.Lock()
	l.changes = append(l.changes, routeChange{at: time.Now(), backends: slices.Clone(backends)})
	l.mu.Unlock()
	return prev
}

func (l *routeLog) SetUnavailable(service string, domains []string, hold, retryAfter time.Duration) {
	l.Router.SetUnavailable(service, domains, hold, retryAfter)
	l.mu.Lock()
	l.changes = append(l.changes, routeChange{at: time.Now()})
	l.mu.Unlock()
}

// left waits until a route change made at or after since no longer holds
// backend, and returns when it was made.
func (l *routeLog) left(t testing.TB, backend string, since time.Time, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		l.mu.Lock()
		for _, c := range l.changes {
			if !c.at.Before(since) && !slices.Contains(c.backends, backend) {
				l.mu.Unlock()
				return c.at
			}
		}
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%s is still in the route %s later", backend, within)
		}
		time.Sleep(time.Millisecond)
	}
}

// withRouteLog has the harness's engine drive the router through log.
func withRouteLog(log *routeLog) func(*engine.Options) {
	return func(o *engine.Options) {
		log.Router = o.Router
		o.Router = log
	}
}

// dieEvent waits for Docker's die event of container id on its own event
// stream (subscribed before the kill) and returns when it arrived.
func dieEvent(t testing.TB, docker <-chan engine.RuntimeEvent, id string) time.Time {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev := <-docker:
			if ev.Type == engine.EventTypeContainer && ev.Action == engine.ActionDie && ev.ID == id {
				return time.Now()
			}
		case <-timeout:
			t.Fatalf("no die event from Docker for %s", id)
		}
	}
}

// A service with three replicas runs three containers, one per slot, and
// the router balances across them: answers come from all three.
func TestThreeReplicasServe(t *testing.T) {
	h := newHarness(t)
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	defer func() { h.eng.Close() }() // before the images go: nothing starts their containers again
	h.service("web", v1, nil)
	h.scaled("web", 3)
	d1 := h.act(deploy("web"))
	if d1.Status != store.StatusActive || d1.Replicas != 3 || len(d1.Containers) != 3 {
		t.Fatalf("#1: %s with %d replicas, containers %+v", d1.Status, d1.Replicas, d1.Containers)
	}
	cs := h.containers()
	if len(cs) != 3 {
		t.Fatalf("%d containers, want 3", len(cs))
	}
	var slots []string
	for _, c := range cs {
		slots = append(slots, c.Labels[engine.LabelReplica])
	}
	slices.Sort(slots)
	if !slices.Equal(slots, []string{"0", "1", "2"}) {
		t.Errorf("replica labels %v, want 0, 1 and 2", slots)
	}
	seen := h.hostnames("web", 3, 300)
	if !sameContainers(d1, seen) {
		t.Fatalf("answers came from %v, want the 3 containers of #1 %+v", seen, d1.Containers)
	}
	rs := h.healthyReplicas(d1.ID, 3, 10*time.Second)
	if rs.State != engine.RuntimeHealthy {
		t.Errorf("runtime %+v", rs)
	}
	t.Logf("answers per container: %v", seen)
}

// A killed replica is out of the route as soon as the engine hears of its
// death from Docker: the requests that fail are at most those on their way
// to it, the others go to the replicas left, and it comes back into the
// route once started again and healthy. (BenchmarkReplicaOutOfRotation
// measures how soon against its goal; this test holds the behaviour.)
func TestKilledReplicaLeavesTheRotation(t *testing.T) {
	routes := &routeLog{}
	h := newHarness(t, withRouteLog(routes))
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	defer func() { h.eng.Close() }() // before the image goes: nothing starts its containers again
	h.service("web", v1, nil)
	h.scaled("web", 3)
	d1 := h.act(deploy("web"))
	h.healthyReplicas(d1.ID, 3, 10*time.Second)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	docker, _ := h.rt.Events(sctx)
	load := h.timedLoad("web", 4, func(code int, body string) bool { return code == 200 && body == "hello from v1" })
	defer load.stop()

	victim, _ := d1.Replica(1)
	killed := time.Now()
	if _, err := h.rt.Client().ContainerKill(ctx, victim.ContainerID, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
		t.Fatal(err)
	}
	died := dieEvent(t, docker, victim.ContainerID)
	out := routes.left(t, fmt.Sprintf("127.0.0.1:%d", victim.HostPort), killed, 10*time.Second)
	if took := out.Sub(died); took > 5*time.Second { // the goal, < 1 s, is the benchmark's: this machine is shared
		t.Errorf("the killed replica left the route %s after Docker reported its death", took)
	}
	// While it is down, every answer comes from the other two.
	for range 30 {
		code, body, err := h.get("web", "/env/HOSTNAME")
		if err != nil || code != 200 {
			t.Fatalf("while replica 1 is down: %d %q %v", code, body, err)
		}
		if body == victim.ContainerID[:12] {
			if rs := h.eng.Runtime(d1.ID); rs.Replicas[1].State == engine.RuntimeHealthy {
				break // it is back already
			}
			t.Fatalf("the crashed replica answered")
		}
	}

	// Back: started again (the same container), healthy, in the route.
	h.healthyReplicas(d1.ID, 3, 30*time.Second)
	load.stop()
	got, _ := h.store.GetDeployment(ctx, d1.ID)
	if got.Restarts != 1 || got.Replicas != 3 || h.deployments("web") != 1 {
		t.Errorf("after the restart: restarts %d, replicas %d, %d deployments", got.Restarts, got.Replicas, h.deployments("web"))
	}
	if !sameContainers(got, h.hostnames("web", 3, 300)) {
		t.Errorf("the restarted replica is not back in the route")
	}
	if late := load.failedAfter(out); len(late) > 0 {
		t.Errorf("%d requests that began after the replica left the route failed (of %d); first: %+v", len(late), load.total, late[0])
	}
	t.Logf("%d requests, %d failed (on their way to the killed replica); kill -> die event %s, die event -> out of the route %s",
		load.total, len(load.failures), died.Sub(killed), out.Sub(died))
}

// A cutover of three replicas under load: green's three all pass before the
// switch, blue's three drain together, and no request fails.
func TestCutoverWithThreeReplicasUnderLoad(t *testing.T) {
	h := newHarness(t)
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")
	defer func() { h.eng.Close() }() // before the images go: nothing starts their containers again
	h.service("web", v1, nil)
	h.scaled("web", 3)
	d1 := h.act(deploy("web"))
	var mu sync.Mutex
	var bad []string
	stop := h.load("web", 8, func(code int, body string, err error) {
		if err != nil || code != 200 || (body != "hello from v1" && body != "hello from v2") {
			mu.Lock()
			bad = append(bad, fmt.Sprintf("%d %q %v", code, body, err))
			mu.Unlock()
		}
	})
	d2 := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2})
	// The load goes on through blue's drain.
	h.waitStatus(d1.ID, store.StatusInactive, 30*time.Second)
	total := stop()
	if d2.Status != store.StatusActive || len(d2.Containers) != 3 {
		t.Fatalf("#2: %s with %+v", d2.Status, d2.Containers)
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d requests failed across the cutover; first: %s", len(bad), total, bad[0])
	}
	if body := h.mustGet("web", "/"); body != "hello from v2" {
		t.Errorf("after the cutover: %q", body)
	}
	cs := h.containers()
	if len(cs) != 3 {
		t.Errorf("%d containers after the drain, want green's 3", len(cs))
	}
	for _, c := range cs {
		if c.Labels[engine.LabelDeployment] != d2.ID {
			t.Errorf("container %s of %s is left", c.Name, c.Labels[engine.LabelDeployment])
		}
	}
	t.Logf("%d requests across the cutover, %d failed", total, len(bad))
}

// clank scale changes the ACTIVE deployment's count in place: up, the new
// replicas join the route once healthy; down, the extra ones drain and go;
// no new deployment, an event each time, no failed request.
func TestScaleInPlace(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	defer func() { h.eng.Close() }() // before the images go: nothing starts their containers again
	h.service("web", v1, nil)
	d1 := h.act(deploy("web"))
	load := h.timedLoad("web", 4, func(code int, body string) bool { return code == 200 && body == "hello from v1" })
	defer load.stop()

	up, err := h.eng.Scale(ctx, "web", 3, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if up.ID != d1.ID || up.Replicas != 3 || len(up.Containers) != 3 {
		t.Fatalf("after scale to 3: %+v", up)
	}
	if !sameContainers(up, h.hostnames("web", 3, 300)) {
		t.Fatalf("the new replicas do not answer through the router")
	}
	if svc, _ := h.eng.Service(ctx, "web"); svc.Replicas != 3 {
		t.Errorf("service replicas %d, want 3", svc.Replicas)
	}

	down, err := h.eng.Scale(ctx, "web", 1, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if down.Replicas != 1 || len(down.Containers) != 1 || down.ContainerID != d1.ContainerID {
		t.Fatalf("after scale to 1: %+v (first container was %s)", down, d1.ContainerID)
	}
	if cs := h.containers(); len(cs) != 1 || cs[0].ID != d1.ContainerID {
		t.Errorf("containers after scale to 1: %+v", cs)
	}
	if seen := h.hostnames("web", 2, 50); len(seen) != 1 {
		t.Errorf("answers from %v after scale to 1", seen)
	}
	load.stop()
	if len(load.failures) > 0 {
		t.Errorf("%d of %d requests failed while scaling; first: %+v", len(load.failures), load.total, load.failures[0])
	}
	if h.deployments("web") != 1 {
		t.Errorf("%d deployments, want 1: scaling makes none", h.deployments("web"))
	}
	evs, _ := h.eng.Events(ctx, d1.ID)
	var msgs []string
	for _, ev := range evs {
		msgs = append(msgs, ev.Message)
	}
	all := strings.Join(msgs, "\n")
	if !strings.Contains(all, "scaled from 1 to 3 replicas by alice") || !strings.Contains(all, "scaled from 3 to 1 replica by alice") {
		t.Errorf("events:\n%s", all)
	}
	if _, err := h.eng.Scale(ctx, "web", 0, "alice"); err == nil || !strings.Contains(err.Error(), "invalid replica count 0") {
		t.Errorf("scale to 0: %v", err)
	}
	t.Logf("%d requests while scaling up and down, %d failed", load.total, len(load.failures))
}

// A rollback runs at the service's current count, never the count its
// target ran with, and adopts the target's warm standby replica by replica.
func TestRollbackRunsAtTheServicesCount(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")
	defer func() { h.eng.Close() }() // before the images go: nothing starts their containers again
	h.service("web", v1, nil)
	keep := true
	if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{KeepWarm: &keep}); err != nil {
		t.Fatal(err)
	}
	h.scaled("web", 2)
	d1 := h.act(deploy("web"))
	d2 := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2})
	warm := h.waitStatus(d1.ID, store.StatusInactive, 30*time.Second)
	if warm.WarmUntil == nil || len(warm.Containers) != 2 {
		t.Fatalf("#1 after the cutover: warm until %v, containers %+v", warm.WarmUntil, warm.Containers)
	}
	if _, err := h.eng.Scale(ctx, "web", 3, "alice"); err != nil {
		t.Fatal(err)
	}

	d3 := h.act(engine.Request{Kind: store.KindRollback, Service: "web", Deployment: strconv.Itoa(d1.Number)})
	if d3.Status != store.StatusActive || d3.Replicas != 3 || len(d3.Containers) != 3 {
		t.Fatalf("rollback: %s with %d replicas %+v, want ACTIVE with the service's 3", d3.Status, d3.Replicas, d3.Containers)
	}
	if got, _ := h.store.GetDeployment(ctx, d1.ID); got.Replicas != 2 {
		t.Errorf("#1 records %d replicas, want the 2 it ran with", got.Replicas)
	}
	for slot := range 2 {
		was, _ := warm.Replica(slot)
		now, _ := d3.Replica(slot)
		if now.ContainerID != was.ContainerID {
			t.Errorf("replica %d runs %s, want #1's warm container %s", slot, now.ContainerID, was.ContainerID)
		}
	}
	if !sameContainers(d3, h.hostnames("web", 3, 300)) {
		t.Errorf("the rollback's 3 replicas do not all answer")
	}
	if body := h.mustGet("web", "/"); body != "hello from v1" {
		t.Errorf("after the rollback: %q", body)
	}
	h.waitStatus(d2.ID, store.StatusInactive, 30*time.Second)
}

// After a restart of Clank, reconcile brings every replica of an ACTIVE
// deployment back: the ones still running are routed again, a missing one
// is started, and one beyond the count (a scale down the restart cut short)
// is removed.
func TestReconcileRestoresEveryReplica(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	defer func() { h.eng.Close() }() // before the images go: nothing starts their containers again
	h.service("web", v1, nil)
	h.scaled("web", 3)
	d1 := h.act(deploy("web"))
	h.healthyReplicas(d1.ID, 3, 10*time.Second)

	h.eng.Close()
	gone, _ := d1.Replica(1)
	if err := h.rt.Stop(ctx, gone.ContainerID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Scale(ctx, "web", d1.ID, 2, "scaled from 3 to 2 replicas by test"); err != nil {
		t.Fatal(err)
	}
	extra, _ := d1.Replica(2)
	h.router.RemoveRoute("web") // a fresh router, as after a crash
	h.start()

	h.healthyReplicas(d1.ID, 2, 30*time.Second)
	got, _ := h.store.GetDeployment(ctx, d1.ID)
	if len(got.Containers) != 2 {
		t.Fatalf("after the restart: %+v, want slots 0 and 1", got.Containers)
	}
	first, _ := d1.Replica(0)
	if r, _ := got.Replica(0); r.ContainerID != first.ContainerID {
		t.Errorf("replica 0 was running and got a new container")
	}
	if r, _ := got.Replica(1); r.ContainerID == gone.ContainerID || r.ContainerID == "" {
		t.Errorf("replica 1 records %q, want a new container", r.ContainerID)
	}
	if _, err := h.rt.Inspect(ctx, extra.ContainerID); err == nil {
		t.Errorf("replica 2, beyond the count, still has its container")
	}
	if !sameContainers(got, h.hostnames("web", 2, 300)) {
		t.Errorf("not every replica answers after the restart")
	}
	if n := len(h.containers()); n != 2 {
		t.Errorf("%d containers, want 2", n)
	}
}
