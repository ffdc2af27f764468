package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// A rollback freezes pushes: a git push's deploy is refused (creating
// nothing) and its image can be held; an explicit deploy lifts the freeze
// and settles the held image; unfreeze lifts it too.
func TestRollbackFreezesPushes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")
	h.service("web", v1, nil)
	h.act(engine.Request{Kind: store.KindDeploy, Service: "web"})
	h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2, GitPush: true})
	if svc, _ := h.eng.Service(ctx, "web"); svc.Freeze != nil {
		t.Fatalf("deploys froze the service: %+v", svc.Freeze)
	}

	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	events := h.eng.Subscribe(wctx)
	rb := h.act(engine.Request{Kind: store.KindRollback, Service: "web", TriggeredBy: "carol (cli)"})
	svc, _ := h.eng.Service(ctx, "web")
	if f := svc.Freeze; f == nil || f.By != "carol (cli)" || f.Reason != "rollback #3 to #1" || f.At.IsZero() {
		t.Fatalf("after rollback #%d the freeze is %+v", rb.Number, svc.Freeze)
	}
	waitMessage(t, events, "pushes frozen: rollback #3 to #1")

	_, err := h.eng.Act(ctx, engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2, GitPush: true, TriggeredBy: "push"})
	if !errors.Is(err, engine.ErrFrozen) || !errors.Is(err, engine.ErrRefused) ||
		!strings.Contains(err.Error(), "carol (cli)") || !strings.Contains(err.Error(), "clank unfreeze --service web") {
		t.Fatalf("a push's deploy while frozen: %v", err)
	}
	if n, _ := h.store.CountDeployments(ctx, "web"); n != 3 {
		t.Fatalf("a refused push created a deployment: %d deployments, want 3", n)
	}
	if err := h.eng.HoldImage(ctx, "web", v2); err != nil {
		t.Fatal(err)
	}
	if svc, _ := h.eng.Service(ctx, "web"); svc.HeldImage != v2 || svc.ActiveDeploymentID != rb.ID {
		t.Fatalf("held image %q, ACTIVE %s; want %s held and the rollback still ACTIVE", svc.HeldImage, svc.ActiveDeploymentID, v2)
	}

	// An explicit deploy is the operator's word: the freeze goes, and the
	// held image is settled.
	h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2, TriggeredBy: "carol (cli)"})
	if svc, _ := h.eng.Service(ctx, "web"); svc.Freeze != nil || svc.HeldImage != "" {
		t.Fatalf("after an explicit deploy: freeze %+v, held %q", svc.Freeze, svc.HeldImage)
	}
	waitMessage(t, events, "freeze lifted: deploy #4 by carol (cli)")

	h.act(engine.Request{Kind: store.KindRollback, Service: "web"})
	before, err := h.eng.Unfreeze(ctx, "web", "dave")
	if err != nil || before == nil || before.Reason != "rollback #5 to #3" {
		t.Fatalf("unfreeze: %+v %v", before, err)
	}
	waitMessage(t, events, "freeze lifted: unfreeze by dave")
	h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v1, GitPush: true})
	if again, err := h.eng.Unfreeze(ctx, "web", "dave"); err != nil || again != nil {
		t.Fatalf("unfreeze of a service that is not frozen: %+v %v", again, err)
	}
	if _, err := h.eng.Unfreeze(ctx, "nope", "dave"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("unfreeze of an unknown service: %v", err)
	}
}

// waitMessage waits for an event with msg, failing the test if the stream
// closes (its context ends) first.
func waitMessage(t *testing.T, events <-chan engine.Event, msg string) {
	t.Helper()
	for ev := range events {
		if ev.Message == msg {
			return
		}
	}
	t.Fatalf("the event stream closed before %q", msg)
}

// An automatic rollback freezes pushes too: it goes through the same Act.
func TestAutomaticRollbackFreezesPushes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.service("web", testdocker.SampleImage(t, h.rt, "v1"), nil)
	h.setPolicy("web", watched())
	h.act(deploy("web"))
	d2 := h.deployV2(testdocker.SampleImage(t, h.rt, "v2"), nil)
	events := h.eng.Subscribe(ctx)
	h.post(d2, "/crash?code=7")
	d3 := h.autoRollbackOf(events, d2)
	svc, _ := h.eng.Service(ctx, "web")
	if f := svc.Freeze; f == nil || f.By != d3.TriggeredBy || !strings.HasPrefix(f.By, "clank (watch: crashed") || f.Reason != "rollback #3 to #1" {
		t.Fatalf("after the automatic rollback #%d by %q: freeze %+v", d3.Number, d3.TriggeredBy, svc.Freeze)
	}
}
