package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// setPolicy gives service policy p.
func (h *harness) setPolicy(service string, p store.Policy) {
	h.t.Helper()
	if _, err := h.eng.UpdateService(context.Background(), service, engine.ServicePatch{AutoRollback: &p.AutoRollback,
		WatchWindow: &p.WatchWindow, WatchFailures: &p.WatchFailures, Watch5xx: &p.Watch5xx, KeepWarm: &p.KeepWarm}); err != nil {
		h.t.Fatal(err)
	}
}

// watched is the policy of these tests: auto-rollback on, a minute's window.
func watched() store.Policy {
	p := store.DefaultPolicy()
	p.AutoRollback, p.WatchWindow = true, time.Minute
	return p
}

// deployV2 deploys image with env set on the service, and waits for ACTIVE.
func (h *harness) deployV2(image string, env map[string]string) store.Deployment {
	h.t.Helper()
	if len(env) > 0 {
		if _, err := h.eng.UpdateService(context.Background(), "web", engine.ServicePatch{SetEnv: env}); err != nil {
			h.t.Fatal(err)
		}
	}
	d := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: image})
	if d.Status != store.StatusActive {
		h.t.Fatalf("v2: %s %s", d.Status, d.FailureReason)
	}
	return d
}

// autoRollbackOf waits for the rollback the watch of d starts, and for it
// to end.
func (h *harness) autoRollbackOf(events <-chan engine.Event, d store.Deployment) store.Deployment {
	h.t.Helper()
	ev := waitEvent(h.t, events, 30*time.Second, func(ev engine.Event) bool {
		return ev.Type == engine.EventAutoRollback || ev.Type == engine.EventAutoRollbackRefused
	})
	if ev.Type != engine.EventAutoRollback || ev.Deployment == nil || ev.Deployment.ID == d.ID {
		h.t.Fatalf("no automatic rollback of #%d: %s", d.Number, ev.Message)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return h.waitEnd(ctx, events, ev.Deployment.ID)
}

// A v2 that crashes after its cutover is rolled back to v1 automatically,
// once: the clients through the router see no failure but from requests
// that were on their way to the crashing container; the rollback adopts v1's
// warm standby; and when the rollback itself crashes in its window, it is
// not rolled back again (never twice in a row).
func TestWatchRollsBackACrashingDeploymentOnce(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")
	h.service("web", v1, nil)
	h.setPolicy("web", watched())
	d1 := h.act(deploy("web"))
	events := h.eng.Subscribe(ctx)
	load := h.timedLoad("web", 4, func(code int, body string) bool {
		return code == 200 && (body == "hello from v1" || body == "hello from v2")
	})
	defer load.stop()

	d2 := h.deployV2(v2, map[string]string{"CRASH_AFTER": "2s"})
	waitEvent(t, events, 15*time.Second, runtimeIs(d2.ID, engine.RuntimeCrashed))
	seen := time.Now()
	d3 := h.autoRollbackOf(events, d2)
	load.stop()

	if d3.Status != store.StatusActive || d3.Kind != store.KindRollback || d3.SourceDeploymentID != d1.ID ||
		!strings.HasPrefix(d3.TriggeredBy, "clank (watch: crashed: exit 3") || !engine.IsAutoRollback(d3) {
		t.Fatalf("the automatic rollback: %s %s of %s by %q", d3.Status, d3.Kind, d3.SourceDeploymentID, d3.TriggeredBy)
	}
	if d3.ContainerID != d1.ContainerID {
		t.Errorf("the rollback started container %s, want v1's warm standby %s", d3.ContainerID, d1.ContainerID)
	}
	if got, _ := h.store.GetDeployment(ctx, d2.ID); !strings.HasPrefix(got.WatchTripped, "crashed: exit 3") {
		t.Errorf("#2's watch_tripped = %q", got.WatchTripped)
	}
	if body := h.mustGet("web", "/"); body != "hello from v1" {
		t.Fatalf("after the rollback: %q", body)
	}
	if late := load.failedAfter(seen); len(late) > 0 {
		t.Errorf("%d requests that began after the crash was seen failed (of %d); first: %+v", len(late), load.total, late[0])
	}
	t.Logf("%d requests, %d failed (on their way to the crashing container)", load.total, len(load.failures))

	// The rollback crashes in its own window: its watch trips, but it is
	// not rolled back.
	h.post(d3, "/crash?code=4")
	ev := waitEvent(t, events, 15*time.Second, func(ev engine.Event) bool { return ev.Type == engine.EventAutoRollbackRefused })
	if !strings.Contains(ev.Message, "never twice in a row") || ev.Deployment == nil || ev.Deployment.ID != d3.ID {
		t.Fatalf("a crash of the automatic rollback: %s", ev.Message)
	}
	waitEvent(t, events, 15*time.Second, runtimeIs(d3.ID, engine.RuntimeHealthy))
	if n, _ := h.store.CountDeployments(ctx, "web"); n != 3 {
		t.Fatalf("%d deployments, want 3: nothing rolled the rollback back", n)
	}
	if svc, _ := h.eng.Service(ctx, "web"); svc.ActiveDeploymentID != d3.ID {
		t.Fatalf("active is %s, want #3", svc.ActiveDeploymentID)
	}
}

// Failed probes and 5xx answers after the cutover trip the watch too; with
// failing probes alone, no client request fails across the rollback.
func TestWatchTripsOnFailedProbesAnd5xx(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    map[string]string
		act    func(h *harness, d store.Deployment) (stop func())
		reason string
	}{
		{"failed probes", nil, func(h *harness, d store.Deployment) func() {
			// The app still answers its requests: the clients see no
			// failure across the rollback.
			l := h.timedLoad("web", 2, func(code int, body string) bool {
				return code == 200 && (body == "hello from v1" || body == "hello from v2")
			})
			h.post(d, "/health?fail=1")
			return func() {
				l.stop()
				if len(l.failures) > 0 {
					h.t.Errorf("%d of %d requests failed across the rollback; first: %+v", len(l.failures), l.total, l.failures[0])
				}
			}
		}, "3 failed health checks in a row"},
		{"5xx answers", map[string]string{"STATUS": "500"}, func(h *harness, d store.Deployment) func() {
			l := h.timedLoad("web", 2, func(int, string) bool { return true })
			return l.stop
		}, "were 5xx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			v1 := testdocker.SampleImage(t, h.rt, "v1")
			v2 := testdocker.SampleImage(t, h.rt, "v2")
			h.service("web", v1, nil)
			h.setPolicy("web", watched())
			d1 := h.act(deploy("web"))
			events := h.eng.Subscribe(ctx)
			d2 := h.deployV2(v2, tc.env)
			stop := tc.act(h, d2)
			d3 := h.autoRollbackOf(events, d2)
			stop()
			got, _ := h.store.GetDeployment(ctx, d2.ID)
			if !strings.Contains(got.WatchTripped, tc.reason) || !strings.Contains(d3.TriggeredBy, tc.reason) {
				t.Fatalf("#2 tripped %q, rollback by %q; want %q", got.WatchTripped, d3.TriggeredBy, tc.reason)
			}
			if d3.Status != store.StatusActive || d3.SourceDeploymentID != d1.ID {
				t.Fatalf("rollback: %s of %s", d3.Status, d3.SourceDeploymentID)
			}
			if body := h.mustGet("web", "/"); body != "hello from v1" {
				t.Fatalf("after the rollback: %q", body)
			}
		})
	}
}

// Without --auto-rollback, a trip is an event and a mark on the deployment;
// nothing is rolled back.
func TestWatchWithoutAutoRollbackOnlySays(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.service("web", testdocker.SampleImage(t, h.rt, "v1"), nil)
	p := watched()
	p.AutoRollback = false
	h.setPolicy("web", p)
	h.act(deploy("web"))
	events := h.eng.Subscribe(ctx)
	d2 := h.deployV2(testdocker.SampleImage(t, h.rt, "v2"), nil)
	h.post(d2, "/crash?code=6")
	ev := waitEvent(t, events, 15*time.Second, func(ev engine.Event) bool { return ev.Type == engine.EventWatch })
	if !strings.Contains(ev.Message, "crashed: exit 6") || !strings.Contains(ev.Message, "automatic rollback is off") {
		t.Fatalf("trip event: %q", ev.Message)
	}
	waitEvent(t, events, 15*time.Second, runtimeIs(d2.ID, engine.RuntimeHealthy)) // restarted, not rolled back
	if n, _ := h.store.CountDeployments(ctx, "web"); n != 2 {
		t.Fatalf("%d deployments", n)
	}
	if got, _ := h.store.GetDeployment(ctx, d2.ID); got.WatchTripped != "crashed: exit 6" || got.Status != store.StatusActive {
		t.Fatalf("#2: %s tripped %q", got.Status, got.WatchTripped)
	}
}

// The watch never rolls back to an image that is gone: the event says why,
// and nothing is created.
func TestWatchNeverRollsBackToAGoneImage(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	h.service("web", v1, nil)
	p := watched()
	p.KeepWarm = false // a warm standby would hold the image
	h.setPolicy("web", p)
	d1 := h.act(deploy("web"))
	d2 := h.deployV2(testdocker.SampleImage(t, h.rt, "v2"), nil)
	h.waitStatus(d1.ID, store.StatusInactive, 15*time.Second)
	testdocker.RemoveImage(t, h.rt, v1)
	events := h.eng.Subscribe(ctx)
	h.post(d2, "/crash?code=6")
	ev := waitEvent(t, events, 15*time.Second, func(ev engine.Event) bool { return ev.Type == engine.EventAutoRollbackRefused })
	if !strings.Contains(ev.Message, "is gone") {
		t.Fatalf("auto rollback to a gone image: %q", ev.Message)
	}
	if n, _ := h.store.CountDeployments(ctx, "web"); n != 2 {
		t.Fatalf("%d deployments: a refused rollback created one", n)
	}
}
