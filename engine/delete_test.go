package engine_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// Deleting a service stops its containers, takes its route down and frees
// its domain, and keeps its history for a service created again under its
// name; it is refused while a deployment is in progress. Purge deletes the
// history and the local images no other service needs.
func TestDeleteService(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")
	h.service("web", v1, nil)
	h.service("api", v1, nil)
	h.act(engine.Request{Kind: store.KindDeploy, Service: "web"})
	d2 := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2})
	h.act(engine.Request{Kind: store.KindDeploy, Service: "api"})
	servesWeb := func() int {
		code, _, err := h.get("web", "/")
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	if code := servesWeb(); code != http.StatusOK {
		t.Fatalf("web answers %d before the delete", code)
	}

	// In progress: refused, nothing changes.
	short, long := 5*time.Second, 30*time.Second
	if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{SetEnv: map[string]string{"READY_AFTER": "60s"}, DeployTimeout: &short}); err != nil {
		t.Fatal(err)
	}
	slow, err := h.eng.Act(ctx, engine.Request{Kind: store.KindDeploy, Service: "web", TriggeredBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h.waitStatus(slow.ID, store.StatusHealthChecking, 30*time.Second)
	if _, err := h.eng.DeleteService(ctx, "web", false); !errors.Is(err, engine.ErrInProgress) {
		t.Fatalf("delete while #3 is in progress: %v", err)
	}
	if code := servesWeb(); code != http.StatusOK {
		t.Fatalf("a refused delete took web down: %d", code)
	}
	h.waitStatus(slow.ID, store.StatusFailed, 30*time.Second) // its deploy timeout is 5 s
	if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{UnsetEnv: []string{"READY_AFTER"}, DeployTimeout: &long}); err != nil {
		t.Fatal(err)
	}

	res, err := h.eng.DeleteService(ctx, "web", false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Containers != 1 || res.Deployments != 3 {
		t.Fatalf("delete: %+v, want 1 container removed and 3 deployments kept", res)
	}
	if cs, _ := h.rt.List(ctx, map[string]string{engine.LabelOwner: h.eng.Owner(), engine.LabelService: "web"}); len(cs) != 0 {
		t.Fatalf("web's containers after the delete: %+v", cs)
	}
	if code := servesWeb(); code != http.StatusNotFound {
		t.Fatalf("web.localhost answers %d after the delete, want 404", code)
	}
	if got, err := h.store.GetDeployment(ctx, d2.ID); err != nil || got.Status != store.StatusInactive {
		t.Fatalf("web's ACTIVE deployment after the delete: %s %v, want INACTIVE and kept", got.Status, err)
	}
	if _, err := h.eng.Service(ctx, "web"); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("the deleted service: %v", err)
	}
	if _, err := h.eng.Act(ctx, engine.Request{Kind: store.KindDeploy, Service: "web"}); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("deploy of the deleted service: %v", err)
	}
	// Its domain is free for another service.
	h.service("www", v2, nil)
	if _, err := h.eng.UpdateService(ctx, "www", engine.ServicePatch{Domains: []string{"web.localhost"}}); err != nil {
		t.Fatalf("web.localhost after the delete: %v", err)
	}
	if _, err := h.eng.UpdateService(ctx, "www", engine.ServicePatch{Domains: []string{"www.localhost"}}); err != nil {
		t.Fatal(err)
	}

	// Created again, it has its history: a rollback to #2 works.
	h.service("web", v1, nil)
	h.act(engine.Request{Kind: store.KindDeploy, Service: "web"})
	rb := h.act(engine.Request{Kind: store.KindRollback, Service: "web", Deployment: "2"})
	if rb.Number != 5 || rb.Status != store.StatusActive {
		t.Fatalf("rollback after re-creating web: #%d %s", rb.Number, rb.Status)
	}
	if got := h.mustGet("web", "/"); got != "hello from v2" {
		t.Fatalf("web answers %q after the rollback to #2", got)
	}

	// Purge: the history goes, and v2 (web's alone) with it; v1 stays: api
	// runs it.
	h.waitStatus(d2.ID, store.StatusInactive, 15*time.Second)
	res, err = h.eng.DeleteService(ctx, "web", true)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := h.store.CountDeployments(ctx, "web"); n != 0 || res.Deployments != 0 {
		t.Fatalf("after purge: %d deployments, result %+v", n, res)
	}
	if _, err := h.rt.InspectImage(ctx, v1); err != nil {
		t.Errorf("purge removed v1, which api runs: %v", err)
	}
	if _, err := h.rt.InspectImage(ctx, v2); !errors.Is(err, engine.ErrImageNotFound) {
		t.Errorf("purge left web's own image v2: %v (removed: %+v)", err, res.Images)
	}
	if _, err := h.eng.DeleteService(ctx, "web", true); !errors.Is(err, engine.ErrNotFound) {
		t.Fatalf("purge of a purged service: %v", err)
	}
	if code, _, _ := h.get("api", "/"); code != http.StatusOK {
		t.Fatalf("api answers %d after web's purge", code)
	}
}
