package engine_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/registry"
	"github.com/clank-dev/clank/store"
)

// warmHistory deploys v1 (#1) then v2 (#2) with a warm standby policy of
// window and waits for #1 to be the warm standby.
func warmHistory(t *testing.T, h *harness, window time.Duration) (d1, d2 store.Deployment) {
	t.Helper()
	h.service("web", testdocker.SampleImage(t, h.rt, "v1"), nil)
	p := store.DefaultPolicy()
	p.WatchWindow = window
	h.setPolicy("web", p)
	d1 = h.act(deploy("web"))
	d2 = h.deployV2(testdocker.SampleImage(t, h.rt, "v2"), nil)
	d1 = h.waitStatus(d1.ID, store.StatusInactive, 15*time.Second)
	if d1.WarmUntil == nil || d2.WatchUntil == nil || !d1.WarmUntil.Equal(*d2.WatchUntil) {
		t.Fatalf("#1 warm until %v, #2 watched until %v", d1.WarmUntil, d2.WatchUntil)
	}
	if c, err := h.rt.Inspect(context.Background(), d1.ContainerID); err != nil || !c.Running {
		t.Fatalf("#1's container is not kept running: %v %+v", err, c)
	}
	return d1, d2
}

// A rollback by hand inside the window is a new deployment that goes
// DEPLOYING -> HEALTH_CHECKING -> ACTIVE as always, but adopts the warm
// standby's running container; the deployment it replaces becomes the
// standby.
func TestRollbackAdoptsTheWarmStandby(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	d1, d2 := warmHistory(t, h, time.Minute)
	d3 := h.act(engine.Request{Kind: store.KindRollback, Service: "web"})
	if d3.Status != store.StatusActive || d3.SourceDeploymentID != d1.ID || d3.ContainerID != d1.ContainerID {
		t.Fatalf("rollback: %s of %s in container %s, want #1's %s", d3.Status, d3.SourceDeploymentID, d3.ContainerID, d1.ContainerID)
	}
	if d3.ContainerDeployment(d3.Containers[0]) != d1.ID {
		t.Errorf("#3's container label %q, want #1's id", d3.ContainerDeployment(d3.Containers[0]))
	}
	evs, _ := h.eng.Events(ctx, d3.ID)
	var steps []string
	passed := false
	for _, ev := range evs {
		if n := len(steps); n == 0 || steps[n-1] != string(ev.Status) {
			steps = append(steps, string(ev.Status))
		}
		passed = passed || strings.HasPrefix(ev.Message, "GET /healthz passed (attempt 1 of ")
	}
	if got := strings.Join(steps, ","); got != "DEPLOYING,HEALTH_CHECKING,ACTIVE" {
		t.Errorf("lifecycle: %s", got)
	}
	if !passed {
		t.Errorf("the adopted container's one probe is not recorded as passed: %+v", evs)
	}
	if body := h.mustGet("web", "/"); body != "hello from v1" {
		t.Fatalf("after the rollback: %q", body)
	}
	if got, _ := h.store.GetDeployment(ctx, d1.ID); got.WarmUntil != nil {
		t.Errorf("#1 is still a standby after its adoption")
	}
	old := h.waitStatus(d2.ID, store.StatusInactive, 15*time.Second)
	if old.WarmUntil == nil {
		t.Errorf("#2, replaced, is not the new standby")
	}
	if cs := h.containers(); len(cs) != 2 {
		t.Errorf("%d containers, want #3's (adopted) and #2's (warm)", len(cs))
	}
	if err := h.eng.HasContainer(ctx, d3); err != nil {
		t.Errorf("#3's logs: %v", err)
	}
	// A crash of the adopted container starts it again as #3's.
	events := h.eng.Subscribe(ctx)
	h.post(d3, "/crash?code=9")
	waitEvent(t, events, 15*time.Second, runtimeIs(d3.ID, engine.RuntimeHealthy))
	if body := h.mustGet("web", "/"); body != "hello from v1" {
		t.Fatalf("after #3's restart: %q", body)
	}
}

// The standby goes when the window ends; a standby whose container died
// goes at once, and a rollback then starts a container of its own.
func TestWarmStandbyEnds(t *testing.T) {
	t.Run("window over", func(t *testing.T) {
		h := newHarness(t)
		// A window long enough for #1's drain to end inside it on a loaded
		// machine (the standby is kept at the drain's end).
		d1, _ := warmHistory(t, h, 8*time.Second)
		got := h.waitWarmGone(d1, 25*time.Second)
		h.waitContainerGone(d1.ContainerID)
		evs, _ := h.eng.Events(context.Background(), got.ID)
		if last := evs[len(evs)-1].Message; !strings.Contains(last, "watch window over") {
			t.Errorf("last event: %q", last)
		}
	})
	t.Run("container died", func(t *testing.T) {
		h := newHarness(t)
		ctx := context.Background()
		d1, _ := warmHistory(t, h, time.Minute)
		if _, err := h.rt.Client().ContainerKill(ctx, d1.ContainerID, client.ContainerKillOptions{}); err != nil {
			t.Fatal(err)
		}
		h.waitWarmGone(d1, 15*time.Second)
		d3 := h.act(engine.Request{Kind: store.KindRollback, Service: "web"})
		if d3.Status != store.StatusActive || d3.ContainerID == d1.ContainerID {
			t.Fatalf("cold rollback: %s in %s", d3.Status, d3.ContainerID)
		}
	})
}

// waitWarmGone waits until d is no longer a warm standby.
func (h *harness) waitWarmGone(d store.Deployment, within time.Duration) store.Deployment {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got, err := h.store.GetDeployment(context.Background(), d.ID)
		if err == nil && got.WarmUntil == nil {
			return got
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("#%d is still a warm standby after %s", d.Number, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A restart of Clank neither loses nor leaks a standby: one still due is
// kept (and adoptable), one whose window ended while Clank was down is
// removed at the reconcile.
func TestRestartKeepsOrRemovesTheStandby(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	d1, _ := warmHistory(t, h, 15*time.Second) // a restart inside it, under load too
	h.eng.Close()
	h.start()
	if got, _ := h.store.GetDeployment(ctx, d1.ID); got.WarmUntil == nil {
		t.Fatal("the restart lost the standby")
	}
	if c, err := h.rt.Inspect(ctx, d1.ContainerID); err != nil || !c.Running {
		t.Fatalf("the restart stopped the standby: %v", err)
	}
	h.eng.Close()
	time.Sleep(time.Until(d1.WarmUntil.Add(100 * time.Millisecond))) // the window ends while Clank is down
	h.start()
	if got, _ := h.store.GetDeployment(ctx, d1.ID); got.WarmUntil != nil {
		t.Fatal("a standby past its window survived the restart")
	}
	h.waitContainerGone(d1.ContainerID)
	if cs := h.containers(); len(cs) != 1 {
		t.Fatalf("containers after the restart: %+v", cs)
	}
}

// waitContainerGone waits until the Docker engine no longer has container id.
func (h *harness) waitContainerGone(id string) {
	h.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := h.rt.Inspect(context.Background(), id)
		if errors.Is(err, engine.ErrContainerNotFound) {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("container %s is still there: %v", id, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Prune never removes a warm standby's image.
func TestPruneKeepsTheStandbysImage(t *testing.T) {
	h := newHarness(t)
	d1, _ := warmHistory(t, h, time.Minute)
	pruned, err := h.eng.Prune(context.Background(), "web", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pruned {
		if p.Deployment == d1.Number {
			t.Fatalf("prune took the standby's image: %+v", p)
		}
	}
	if _, err := h.rt.InspectImage(context.Background(), engine.PinnedRef(d1.ImageSource, d1.Config.Image, d1.ImageDigest)); err != nil {
		t.Fatalf("the standby's image: %v", err)
	}
}

// Once Close began, the engine refuses new work and starts nothing.
func TestActAfterCloseIsRefused(t *testing.T) {
	h := newHarness(t)
	h.service("web", testdocker.SampleImage(t, h.rt, "v1"), nil)
	h.eng.Close()
	_, err := h.eng.Act(context.Background(), deploy("web"))
	if !errors.Is(err, engine.ErrClosed) || !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("Act after Close: %v", err)
	}
	if n, _ := h.store.CountDeployments(context.Background(), "web"); n != 0 {
		t.Fatalf("%d deployments created after Close", n)
	}
	if cs := h.containers(); len(cs) != 0 {
		t.Fatalf("containers started after Close: %+v", cs)
	}
	h.start() // the harness closes the engine it has when the test ends
}

// Close begins while a request is still being planned (its registry is slow
// to answer): the request is refused with ErrClosed once it goes on, nothing
// runs, and a deployment it had already recorded is FAILED with the reason.
func TestActDuringCloseStartsNothing(t *testing.T) {
	reg, _ := withRegistry(t)
	asked := make(chan struct{}, 1)
	release := make(chan struct{})
	front := newFailingRegistry(t, reg.addr)
	front.before = func(r *http.Request) {
		if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
			select {
			case asked <- struct{}{}:
			default:
			}
			<-release
		}
	}
	h := newHarness(t, func(o *engine.Options) { o.Images = registry.NewImages(front.addr) })
	reg.addr, reg.auth.ServerAddress = front.addr, front.addr
	ref := front.addr + "/web:v1"
	push(t, h, reg, testdocker.SampleImage(t, h.rt, "v1"), ref)
	h.service("web", ref, nil)

	acted := make(chan error, 1)
	go func() {
		_, err := h.eng.Act(context.Background(), engine.Request{Kind: store.KindDeploy, Service: "web", TriggeredBy: "test"})
		acted <- err
	}()
	select {
	case <-asked: // the request is in its plan, asking the registry
	case <-time.After(30 * time.Second):
		t.Fatal("the deploy never asked the registry")
	}
	h.eng.Close()
	close(release)
	select {
	case err := <-acted:
		if !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("a deploy planned while Close began: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the deploy did not return after Close")
	}
	if cs := h.containers(); len(cs) != 0 {
		t.Fatalf("containers started after Close began: %+v", cs)
	}
	ds, _ := h.store.ListDeployments(context.Background(), "web", 0, 0)
	if len(ds) != 1 {
		t.Fatalf("%d deployments, want the one recorded before the refusal", len(ds))
	}
	for _, d := range ds {
		if d.Status != store.StatusFailed || !strings.Contains(d.FailureReason, "stopped before the deployment began") {
			t.Fatalf("#%d after Close: %s %q", d.Number, d.Status, d.FailureReason)
		}
	}
	h.start() // the harness closes the engine it has when the test ends
}
