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

// The dev.clank.schema label is recorded at deploy time; a rollback or a
// redeploy across a change of it is refused (creating nothing) unless the
// request allows it, and deployments without the label behave as before.
func TestSchemaChangeNeedsAnExplicitAllow(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	s41 := testdocker.SampleImageLabelled(t, h.rt, "v1", map[string]string{engine.LabelSchema: "0041"})
	s42 := testdocker.SampleImageLabelled(t, h.rt, "v2", map[string]string{engine.LabelSchema: "0042"})
	plain := testdocker.SampleImage(t, h.rt, "v3")
	h.service("web", s41, nil)

	d1 := h.act(engine.Request{Kind: store.KindDeploy, Service: "web"})
	d2 := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: s42})
	if d1.Schema != "0041" || d2.Schema != "0042" {
		t.Fatalf("recorded schemas %q and %q, want 0041 and 0042", d1.Schema, d2.Schema)
	}

	for _, kind := range []store.Kind{store.KindRollback, store.KindRedeploy} {
		req := engine.Request{Kind: kind, Service: "web", Deployment: "1", TriggeredBy: "test"}
		p, err := h.eng.Plan(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if p.SchemaChange == nil || p.SchemaChange.From != "0042" || p.SchemaChange.To != "0041" {
			t.Fatalf("%s plan: schema change %+v, want 0042 -> 0041", kind, p.SchemaChange)
		}
		if !errors.Is(p.Refusal, engine.ErrSchemaChange) {
			t.Fatalf("%s plan without the allow: refusal %v", kind, p.Refusal)
		}
		_, err = h.eng.Act(ctx, req)
		if !errors.Is(err, engine.ErrSchemaChange) || !errors.Is(err, engine.ErrRefused) ||
			!strings.Contains(err.Error(), `"0042"`) || !strings.Contains(err.Error(), `"0041"`) {
			t.Fatalf("%s across a schema change: %v, want a refusal naming both schemas", kind, err)
		}
		allowed, err := h.eng.Plan(ctx, engine.Request{Kind: kind, Service: "web", Deployment: "1", AllowSchemaChange: true})
		if err != nil || allowed.Refusal != nil || allowed.SchemaChange == nil {
			t.Fatalf("%s plan with the allow: %v, refusal %v, change %+v", kind, err, allowed.Refusal, allowed.SchemaChange)
		}
	}
	if n, _ := h.store.CountDeployments(ctx, "web"); n != 2 {
		t.Fatalf("refused schema changes created deployments: %d, want 2", n)
	}

	rb := h.act(engine.Request{Kind: store.KindRollback, Service: "web", Deployment: "1", AllowSchemaChange: true})
	if rb.Status != store.StatusActive || rb.Schema != "0041" {
		t.Fatalf("allowed rollback: %s, schema %q", rb.Status, rb.Schema)
	}
	if got := h.mustGet("web", "/"); got != "hello from v1" {
		t.Fatalf("after the rollback web serves %q", got)
	}

	// No label on either side: no question asked.
	d4 := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: plain})
	if d4.Schema != "" {
		t.Fatalf("an image without the label recorded schema %q", d4.Schema)
	}
	p, err := h.eng.Plan(ctx, engine.Request{Kind: store.KindRollback, Service: "web", Deployment: "2"})
	if err != nil || p.SchemaChange != nil || p.Refusal != nil {
		t.Fatalf("rollback from an unlabelled deployment: %v, change %+v, refusal %v", err, p.SchemaChange, p.Refusal)
	}
	h.act(engine.Request{Kind: store.KindRollback, Service: "web", Deployment: "2"})
}

// An automatic rollback never crosses a schema change: the watch trips, the
// event says why with both schemas, nothing is created, and the service is
// not frozen (no rollback happened).
func TestAutomaticRollbackNeverCrossesASchemaChange(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImageLabelled(t, h.rt, "v1", map[string]string{engine.LabelSchema: "0041"})
	v2 := testdocker.SampleImageLabelled(t, h.rt, "v2", map[string]string{engine.LabelSchema: "0042"})
	h.service("web", v1, nil)
	h.setPolicy("web", watched())
	h.act(deploy("web"))
	d2 := h.deployV2(v2, nil)
	events := h.eng.Subscribe(ctx)
	h.post(d2, "/crash?code=5")
	ev := waitEvent(t, events, 30*time.Second, func(ev engine.Event) bool {
		return ev.Type == engine.EventAutoRollback || ev.Type == engine.EventAutoRollbackRefused
	})
	if ev.Type != engine.EventAutoRollbackRefused || !strings.Contains(ev.Message, `"0042"`) || !strings.Contains(ev.Message, `"0041"`) ||
		!strings.Contains(ev.Message, "schema") {
		t.Fatalf("the watch of #2 across a schema change: %s %q", ev.Type, ev.Message)
	}
	if n, _ := h.store.CountDeployments(ctx, "web"); n != 2 {
		t.Fatalf("%d deployments: the refused automatic rollback created one", n)
	}
	if svc, _ := h.eng.Service(ctx, "web"); svc.Freeze != nil || svc.ActiveDeploymentID != d2.ID {
		t.Fatalf("after the refused automatic rollback: freeze %+v, ACTIVE %s", svc.Freeze, svc.ActiveDeploymentID)
	}
}
