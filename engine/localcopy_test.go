package engine_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/registry"
	"github.com/clank-dev/clank/store"
)

// failingRegistry stands in front of a real registry: it forwards, answers
// 401 to everything, or is gone, as the test says.
type failingRegistry struct {
	addr string
	deny atomic.Bool
	srv  *http.Server
	// before, if set, sees each request first (and may hold it); set it
	// before the registry is used.
	before func(*http.Request)
}

func newFailingRegistry(t *testing.T, target string) *failingRegistry {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &failingRegistry{addr: ln.Addr().String()}
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: target})
	f.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.before != nil {
			f.before(r)
		}
		if f.deny.Load() {
			w.Header().Set("WWW-Authenticate", `Basic realm="gone private"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	})}
	go f.srv.Serve(ln)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

// A registry image whose exact digest the local engine holds is available
// (via local) whatever its registry says: 401, or nothing at all. The
// emergency rollback runs from the local copy. Without the copy, the
// registry's answer decides, as before: 401 is missing, silence unknown.
func TestLocalCopyKeepsTheRollbackWhenTheRegistryFails(t *testing.T) {
	reg, _ := withRegistry(t)
	front := newFailingRegistry(t, reg.addr)
	h := newHarness(t, func(o *engine.Options) {
		o.Images = registry.NewImages(front.addr)
	})
	ctx := context.Background()
	reg.addr, reg.auth.ServerAddress = front.addr, front.addr
	push(t, h, reg, testdocker.SampleImage(t, h.rt, "v1"), front.addr+"/web:v1")
	push(t, h, reg, testdocker.SampleImage(t, h.rt, "v2"), front.addr+"/web:v2")
	h.service("web", front.addr+"/web:v1", nil)
	d1 := h.act(deploy("web"))
	d2 := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: front.addr + "/web:v2"})
	if d1.ImageSource != store.SourceRegistry {
		t.Fatalf("#1 source %q, want registry", d1.ImageSource)
	}
	if a := h.eng.CheckImage(ctx, d1); a.State != store.AvailabilityAvailable || a.Via != store.ViaLocal {
		t.Fatalf("#1 with the registry up: %+v, want available via local", a)
	}

	front.deny.Store(true)
	if a := h.eng.CheckImage(ctx, d1); a.State != store.AvailabilityAvailable || a.Via != store.ViaLocal {
		t.Fatalf("#1 while the registry answers 401: %+v, want available via local", a)
	}
	d3 := h.act(engine.Request{Kind: store.KindRollback, Service: "web", Deployment: "1"})
	if d3.Status != store.StatusActive {
		t.Fatalf("the rollback while the registry answers 401: %s %s", d3.Status, d3.FailureReason)
	}
	if got := h.mustGet("web", "/"); got != "hello from v1" {
		t.Fatalf("after the rollback: %q", got)
	}

	// Without its local copy, #2 is what its registry says: 401 is
	// "missing or no access", a registry that is down is unknown.
	h.waitStatus(d2.ID, store.StatusInactive, 15*time.Second)
	pinned := engine.PinnedRef(d2.ImageSource, d2.Config.Image, d2.ImageDigest)
	for _, ref := range []string{front.addr + "/web:v2", pinned} {
		if err := h.rt.RemoveImage(ctx, ref); err != nil && !errors.Is(err, engine.ErrImageNotFound) {
			t.Fatalf("remove %s: %v", ref, err)
		}
	}
	if a := h.eng.CheckImage(ctx, d2); a.State != store.AvailabilityMissing || a.Via != "" {
		t.Fatalf("#2 without a local copy, registry answering 401: %+v, want missing", a)
	}
	if _, err := h.eng.Act(ctx, engine.Request{Kind: store.KindRollback, Service: "web", Deployment: "2"}); !errors.Is(err, engine.ErrRefused) {
		t.Fatalf("a rollback to #2 with neither a local copy nor registry access: %v, want refused", err)
	}

	front.srv.Close()
	if a := h.eng.CheckImage(ctx, d2); a.State != store.AvailabilityUnknown {
		t.Fatalf("#2 without a local copy, registry down: %+v, want unknown", a)
	}
	if a := h.eng.CheckImage(ctx, d1); a.State != store.AvailabilityAvailable || a.Via != store.ViaLocal {
		t.Fatalf("#1 while the registry is down: %+v, want available via local", a)
	}
	svc, _ := h.eng.Service(ctx, "web")
	if !h.eng.RollbackCapable(d1, svc.ActiveDeploymentID) && svc.ActiveDeploymentID != d1.ID {
		t.Fatal("#1 lost its badge while the registry is down")
	}
	kept, err := h.store.GetAvailability(ctx, "registry|"+d1.Config.Image+"|"+d1.ImageDigest)
	if err != nil || kept.State != store.AvailabilityAvailable || kept.Via != store.ViaLocal {
		t.Fatalf("the store keeps %+v %v, want available via local", kept, err)
	}
}
