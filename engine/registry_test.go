package engine_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	dockerregistry "github.com/moby/moby/api/types/registry"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/registry"
	"github.com/clank-dev/clank/store"
)

// clankRegistry is an embedded Clank registry for one test.
type clankRegistry struct {
	addr string
	auth dockerregistry.AuthConfig // what pushes need
}

// withRegistry starts an embedded Clank registry on 127.0.0.1 and returns
// it and the option that makes the engine use it.
func withRegistry(t *testing.T) (clankRegistry, func(*engine.Options)) {
	t.Helper()
	srv, err := registry.NewServer(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	testdocker.CleanupRegistry(t, testdocker.Require(t), addr.String())
	c := srv.Credential()
	reg := clankRegistry{addr: addr.String(), auth: dockerregistry.AuthConfig{Username: c.Username, Password: c.Password, ServerAddress: addr.String()}}
	return reg, func(o *engine.Options) {
		o.Images = registry.NewImages(addr.String())
	}
}

// push tags the local image src as ref and pushes it to reg; the local tag
// is removed when the test ends.
func push(t *testing.T, h *harness, reg clankRegistry, src, ref string) {
	t.Helper()
	ctx := context.Background()
	if err := h.rt.TagImage(ctx, src, ref); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testdocker.RemoveImage(t, h.rt, ref) })
	if err := h.rt.PushImage(ctx, ref, reg.auth, nil); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// registryHistory starts an engine with a Clank registry holding web:v1 and
// web:v2, and deploys v1 (#1, returned) then v2 (#2) from it.
func registryHistory(t *testing.T) (*harness, clankRegistry, store.Deployment) {
	t.Helper()
	reg, opt := withRegistry(t)
	addr := reg.addr
	h := newHarness(t, opt)
	push(t, h, reg, testdocker.SampleImage(t, h.rt, "v1"), addr+"/web:v1")
	push(t, h, reg, testdocker.SampleImage(t, h.rt, "v2"), addr+"/web:v2")
	h.service("web", addr+"/web:v1", nil)
	d1 := h.act(deploy("web"))
	if d1.ImageSource != store.SourceRegistry || !strings.HasPrefix(d1.ImageDigest, "sha256:") {
		t.Fatalf("#1 source %q digest %q", d1.ImageSource, d1.ImageDigest)
	}
	h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: addr + "/web:v2"})
	return h, reg, d1
}

func TestRegistryImageRollsBackAfterLocalRemoval(t *testing.T) {
	h, reg, d1 := registryHistory(t)
	addr := reg.addr
	ctx := context.Background()

	// Remove every local copy of v1: the registry still has it. The rollback
	// pulls it again: that copy goes whatever the test finds.
	pinned := engine.PinnedRef(d1.ImageSource, d1.Config.Image, d1.ImageDigest)
	t.Cleanup(func() { testdocker.RemoveImage(t, h.rt, pinned) })
	for _, ref := range []string{addr + "/web:v1", pinned} {
		if err := h.rt.RemoveImage(ctx, ref); err != nil && !errors.Is(err, engine.ErrImageNotFound) {
			t.Fatalf("remove %s: %v", ref, err)
		}
	}
	if _, err := h.rt.InspectImage(ctx, pinned); !errors.Is(err, engine.ErrImageNotFound) {
		t.Fatalf("v1 still local: %v", err)
	}
	if a := h.eng.CheckImage(ctx, d1); a.State != store.AvailabilityAvailable {
		t.Fatalf("registry image removed locally: %s (%s), want available", a.State, a.Reason)
	}
	d3 := h.act(engine.Request{Kind: store.KindRollback, Service: "web"})
	if d3.Status != store.StatusActive || d3.ImageDigest != d1.ImageDigest {
		t.Fatalf("rollback: %s %s digest %s", d3.Status, d3.FailureReason, d3.ImageDigest)
	}
	if got := h.mustGet("web", "/"); got != "hello from v1" {
		t.Fatalf("after rollback: %q", got)
	}
}

func TestMovedTagIsDetectedAndRollbackKeepsTheDigest(t *testing.T) {
	reg, opt := withRegistry(t)
	addr := reg.addr
	h := newHarness(t, opt)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")
	latest := addr + "/web:latest"
	push(t, h, reg, v1, latest)
	h.service("web", latest, nil)
	d1 := h.act(deploy("web"))

	// CI pushes v2 under the same tag; this machine still has latest -> v1.
	push(t, h, reg, v2, latest)
	if err := h.rt.TagImage(ctx, v1, latest); err != nil {
		t.Fatal(err)
	}
	d2 := h.act(deploy("web"))
	t.Cleanup(func() { testdocker.RemoveImage(t, h.rt, engine.PinnedRef(d2.ImageSource, latest, d2.ImageDigest)) })
	if d2.ImageDigest == d1.ImageDigest {
		t.Fatalf("the moved tag was not detected: #2 pinned %s like #1", d2.ImageDigest)
	}
	if got := h.mustGet("web", "/"); got != "hello from v2" {
		t.Fatalf("#2 serves %q, want what the tag points at now", got)
	}
	// A rollback asks for the digest: the tag cannot swap the image.
	d3 := h.act(engine.Request{Kind: store.KindRollback, Service: "web"})
	if d3.ImageDigest != d1.ImageDigest {
		t.Fatalf("rollback pinned %s, want #1's %s", d3.ImageDigest, d1.ImageDigest)
	}
	if got := h.mustGet("web", "/"); got != "hello from v1" {
		t.Fatalf("rollback serves %q", got)
	}
}

func TestDeletedRegistryImageIsRefusedBeforeAnythingIsCreated(t *testing.T) {
	h, reg, d1 := registryHistory(t)
	addr := reg.addr
	ctx := context.Background()
	// With a local copy the rollback would run from it: remove it, so that
	// the registry alone decides.
	h.waitStatus(d1.ID, store.StatusInactive, 15*time.Second)
	for _, ref := range []string{addr + "/web:v1", engine.PinnedRef(d1.ImageSource, d1.Config.Image, d1.ImageDigest)} {
		if err := h.rt.RemoveImage(ctx, ref); err != nil && !errors.Is(err, engine.ErrImageNotFound) {
			t.Fatalf("remove %s: %v", ref, err)
		}
	}
	h.eng.RefreshAvailability(ctx)
	if !h.eng.RollbackCapable(d1, "") || h.eng.ImageAvailability(d1).Via != store.ViaRegistry {
		t.Fatalf("#1 not rollback capable via the registry before the delete: %+v", h.eng.ImageAvailability(d1))
	}

	req, _ := http.NewRequest(http.MethodDelete, "http://"+addr+"/v2/web/manifests/"+d1.ImageDigest, nil)
	req.SetBasicAuth(reg.auth.Username, reg.auth.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("delete manifest: %v %v", resp, err)
	}
	resp.Body.Close()

	before := h.deployments("web")
	_, err = h.eng.Act(ctx, engine.Request{Kind: store.KindRollback, Service: "web", Deployment: "1"})
	if !errors.Is(err, engine.ErrRefused) || !strings.Contains(err.Error(), "is gone") || !strings.Contains(err.Error(), addr+"/web:v1") {
		t.Fatalf("rollback to a deleted image: %v", err)
	}
	if after := h.deployments("web"); after != before {
		t.Fatalf("the refusal created a deployment")
	}
	if a := h.eng.ImageAvailability(d1); a.State != store.AvailabilityMissing {
		t.Fatalf("availability after delete: %+v", a)
	}
	kept, err := h.store.GetAvailability(ctx, "registry|"+d1.Config.Image+"|"+d1.ImageDigest)
	if err != nil || kept.State != store.AvailabilityMissing || kept.Reason == "" {
		t.Fatalf("availability kept in the store: %+v %v", kept, err)
	}
}

func TestRemovedLocalImageLosesTheBadgeWithinSeconds(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	h.service("web", v1, nil)
	d1 := h.act(deploy("web"))
	h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: testdocker.SampleImage(t, h.rt, "v2")})
	// Until #1's container is gone (drained), its image stays in the engine.
	h.waitStatus(d1.ID, store.StatusInactive, 15*time.Second)
	if a := h.eng.CheckImage(ctx, d1); a.State != store.AvailabilityAvailable || d1.ImageSource != store.SourceLocal {
		t.Fatalf("#1 before: %+v source %s", a, d1.ImageSource)
	}
	// The periodic refresh is minutes away: only the engine's image event
	// can take the badge away within this bound, generous for a loaded machine.
	const within = 10 * time.Second
	wctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	events := h.eng.Subscribe(wctx)
	testdocker.RemoveImage(t, h.rt, v1)
	start := time.Now()
	for h.eng.ImageAvailability(d1).State != store.AvailabilityMissing {
		if time.Since(start) > within {
			t.Fatalf("still %+v %s after the image was removed", h.eng.ImageAvailability(d1), within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("badge gone %s after the image was removed", time.Since(start))
	// ...and subscribers were told.
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("no availability event saying missing within %s", within)
			}
			if ev.Type == engine.EventAvailability && strings.Contains(ev.Message, v1) && strings.Contains(ev.Message, "missing") {
				return
			}
		case <-wctx.Done():
			t.Fatalf("no availability event saying missing within %s", within)
		}
	}
}

func TestPruneKeepsWhatItMust(t *testing.T) {
	reg, opt := withRegistry(t)
	addr := reg.addr
	h := newHarness(t, opt)
	ctx := context.Background()
	push(t, h, reg, testdocker.SampleImage(t, h.rt, "r1"), addr+"/web:r1")
	images := []string{addr + "/web:r1"}
	for _, v := range []string{"v2", "v3", "v4"} {
		images = append(images, testdocker.SampleImage(t, h.rt, v))
	}
	h.service("web", images[0], nil)
	var ds []store.Deployment
	for _, img := range images {
		ds = append(ds, h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: img}))
	}
	h.waitStatus(ds[2].ID, store.StatusInactive, 15*time.Second)
	pruned, err := h.eng.Prune(ctx, "web", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(pruned) != 2 || pruned[0].Deployment != 2 || pruned[1].Deployment != 1 {
		t.Fatalf("pruned %+v, want #2 and #1", pruned)
	}
	for i, d := range ds {
		_, err := h.rt.InspectImage(ctx, engine.PinnedRef(d.ImageSource, d.Config.Image, d.ImageDigest))
		gone := errors.Is(err, engine.ErrImageNotFound)
		if gone != (i < 2) {
			t.Errorf("#%d: local image gone=%v, want %v", d.Number, gone, i < 2)
		}
	}
	h.eng.RefreshAvailability(ctx)
	svc, _ := h.eng.Service(ctx, "web")
	// The local-only #2 loses its badge; the registry image of #1 keeps it.
	if h.eng.RollbackCapable(ds[1], svc.ActiveDeploymentID) {
		t.Error("#2 (local, pruned) is still rollback capable")
	}
	if !h.eng.RollbackCapable(ds[0], svc.ActiveDeploymentID) {
		t.Errorf("#1 (in the registry) lost its badge: %+v", h.eng.ImageAvailability(ds[0]))
	}
	if !h.eng.RollbackCapable(ds[2], svc.ActiveDeploymentID) {
		t.Error("#3 (kept) is not rollback capable")
	}
	if _, err := h.eng.Prune(ctx, "web", 0); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("prune --keep 0: %v", err)
	}
}
