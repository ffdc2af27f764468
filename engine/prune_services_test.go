package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// Prune of one service never removes an image another service still needs:
// one in its keep window (here an INACTIVE deployment, which no running
// container protects), or one its deployment in progress runs.
func TestPruneAcrossServices(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v := map[string]string{}
	for _, name := range []string{"v1", "v2", "v3", "v4", "v5"} {
		v[name] = testdocker.SampleImage(t, h.rt, name)
	}
	deployAll := func(service string, images ...string) []store.Deployment {
		var ds []store.Deployment
		for _, img := range images {
			ds = append(ds, h.act(engine.Request{Kind: store.KindDeploy, Service: service, Image: img}))
		}
		return ds
	}
	h.service("web", v["v1"], nil)
	h.service("api", v["v1"], nil)
	h.service("job", v["v2"], map[string]string{"READY_AFTER": "30s"})
	web := deployAll("web", v["v1"], v["v2"], v["v3"], v["v5"])
	api := deployAll("api", v["v1"], v["v4"])
	h.waitStatus(web[2].ID, store.StatusInactive, 15*time.Second)
	h.waitStatus(api[0].ID, store.StatusInactive, 15*time.Second)
	// job's deployment of v2 is in progress (its app takes 30 s to be ready).
	jd, err := h.eng.Act(ctx, engine.Request{Kind: store.KindDeploy, Service: "job", TriggeredBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h.waitStatus(jd.ID, store.StatusHealthChecking, 30*time.Second)

	// web keeps #4 (v5) and #3 (v3); #2 (v2) is what job deploys, #1 (v1)
	// is in api's keep window: nothing of web's goes.
	pruned, err := h.eng.Prune(ctx, "web", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(pruned) != 0 {
		t.Fatalf("pruned %+v, want nothing: v2 is job's in-progress image, v1 in api's keep window", pruned)
	}
	// With keep 1, web keeps #4 (v5) and api's window is its #2 (v4) alone:
	// web's #3 (v3) and #1 (v1) go, #2 (v2, job's) stays.
	pruned, err = h.eng.Prune(ctx, "web", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(pruned) != 2 || pruned[0].Deployment != 3 || pruned[1].Deployment != 1 || pruned[0].Err != nil || pruned[1].Err != nil {
		t.Fatalf("pruned %+v, want web's #3 (v3) and #1 (v1)", pruned)
	}
	for img, wantGone := range map[string]bool{v["v1"]: true, v["v2"]: false, v["v3"]: true, v["v4"]: false, v["v5"]: false} {
		_, err := h.rt.InspectImage(ctx, img)
		if gone := errors.Is(err, engine.ErrImageNotFound); gone != wantGone {
			t.Errorf("%s: gone=%v, want %v (%v)", img, gone, wantGone, err)
		}
	}
	h.eng.RefreshAvailability(ctx)
	if svc, _ := h.eng.Service(ctx, "api"); h.eng.RollbackCapable(api[0], svc.ActiveDeploymentID) {
		t.Errorf("api #1 (v1, pruned through web with keep 1) is still rollback capable")
	}
}
