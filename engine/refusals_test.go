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

// A rollback restores the target's domains. When another service has taken
// one of them since, the rollback is refused (planned and acted), says which
// domain and which service, creates nothing, and the other service keeps it.
func TestRollbackRefusedWhenAnotherServiceOwnsARestoredDomain(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")
	h.service("web", v1, nil)
	if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{Domains: []string{"web.localhost", "shop.localhost"}}); err != nil {
		t.Fatal(err)
	}
	d1 := h.act(deploy("web"))
	if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{Domains: []string{"web.localhost"}}); err != nil {
		t.Fatal(err)
	}
	h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2})
	h.waitStatus(d1.ID, store.StatusInactive, 30*time.Second)
	// shop.localhost is free again: the shop service takes it.
	h.service("shop", v2, map[string]string{"VERSION": "shop"})
	if _, err := h.eng.UpdateService(ctx, "shop", engine.ServicePatch{Domains: []string{"shop.localhost"}}); err != nil {
		t.Fatal(err)
	}
	h.act(deploy("shop"))
	if got := h.mustGet("shop", "/"); got != "hello from shop" {
		t.Fatalf("shop.localhost answers %q", got)
	}

	wantN, wantC := h.deployments("web"), len(h.containers())
	const why = "cannot roll back to deployment #1: its snapshot restores a domain another service owns now: domain shop.localhost is taken by service shop"
	for _, req := range []engine.Request{
		{Kind: store.KindRollback, Service: "web"},
		{Kind: store.KindRollback, Service: "web", Deployment: "1"},
	} {
		p, err := h.eng.Plan(ctx, req)
		if err != nil || p.Refusal == nil || p.Refusal.Error() != why {
			t.Fatalf("plan of %+v: refusal %v, err %v; want %q", req, p.Refusal, err, why)
		}
		_, err = h.eng.Act(ctx, req)
		if !errors.Is(err, engine.ErrRefused) || !errors.Is(err, store.ErrDomainTaken) || err.Error() != why {
			t.Fatalf("rollback %+v: %v, want the refusal %q", req, err, why)
		}
	}
	if n, c := h.deployments("web"), len(h.containers()); n != wantN || c != wantC {
		t.Fatalf("the refusals created something: %d deployments (want %d), %d containers (want %d)", n, wantN, c, wantC)
	}
	if got := h.mustGet("shop", "/"); got != "hello from shop" {
		t.Fatalf("after the refused rollback shop.localhost answers %q", got)
	}
	if got := h.mustGet("web", "/"); got != "hello from v2" {
		t.Fatalf("after the refused rollback web.localhost answers %q", got)
	}
	// A redeploy of #1 runs web's current domains: nothing to refuse.
	if d := h.act(engine.Request{Kind: store.KindRedeploy, Service: "web", Deployment: "1"}); d.Status != store.StatusActive || strings.Contains(strings.Join(d.Config.Domains, ","), "shop") {
		t.Fatalf("redeploy of #1: %s %q, domains %v", d.Status, d.FailureReason, d.Config.Domains)
	}
}
