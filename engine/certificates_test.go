package engine_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// certCalls records what the engine tells its Certificates (the real manager, over
// ACME, is tested in certs and, through the daemon, end to end in daemon).
type certCalls struct {
	mu       sync.Mutex
	wants    []string // "service: d1 d2"
	redirect map[string]bool
}

func (c *certCalls) Want(service string, domains []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.wants = append(c.wants, fmt.Sprintf("%s: %v", service, domains))
}

func (c *certCalls) Redirect(service string, on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.redirect[service] = on
}

// take returns the calls since the last take.
func (c *certCalls) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.wants
	c.wants = nil
	return w
}

// TestCertificatesFollowDeployments: certificates are wanted for a deployment's
// domains while it deploys (with the ACTIVE one's), for its own once ACTIVE, for the
// ACTIVE one's again if it fails; a rollback brings its domains back; a restart
// says it all again; a deleted service wants none; the redirect follows the
// service's policy.
func TestCertificatesFollowDeployments(t *testing.T) {
	calls := &certCalls{redirect: map[string]bool{}}
	h := newHarness(t, func(o *engine.Options) { o.Certificates = calls })
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	svc := h.service("web", v1, nil)
	if !svc.HTTPSRedirect || !calls.redirect["web"] {
		t.Fatalf("a new service's redirect: stored %v, told %v; want on", svc.HTTPSRedirect, calls.redirect["web"])
	}
	setDomains := func(ds ...string) {
		t.Helper()
		if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{Domains: ds}); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(what string, want ...string) {
		t.Helper()
		if got := calls.take(); !slices.Equal(got, want) {
			t.Fatalf("%s: Want calls %q, want %q", what, got, want)
		}
	}

	setDomains("a.example.com")
	first := h.act(engine.Request{Kind: store.KindDeploy, Service: "web"})
	expect("first deploy", "web: [a.example.com]", "web: [a.example.com]")

	setDomains("b.example.com")
	expect("a config change deploys nothing")
	h.act(engine.Request{Kind: store.KindDeploy, Service: "web"})
	expect("deploy with a new domain", "web: [a.example.com b.example.com]", "web: [b.example.com]")

	h.act(engine.Request{Kind: store.KindRollback, Service: "web", Deployment: first.ID})
	expect("rollback to a.example.com", "web: [b.example.com a.example.com]", "web: [a.example.com]")

	if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{Domains: []string{"c.example.com"}, HealthPath: ptr("/nope"), DeployTimeout: ptr(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if d := h.act(engine.Request{Kind: store.KindDeploy, Service: "web"}); d.Status != store.StatusFailed {
		t.Fatalf("a deploy with a failing health check ended %s", d.Status)
	}
	expect("failed deploy", "web: [a.example.com c.example.com]", "web: [a.example.com]")

	off := false
	if svc, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{HTTPSRedirect: &off}); err != nil || svc.HTTPSRedirect || calls.redirect["web"] {
		t.Fatalf("redirect off: %v, stored %v, told %v", err, svc.HTTPSRedirect, calls.redirect["web"])
	}

	h.eng.Close()
	calls.redirect = map[string]bool{"web": true}
	h.start()
	expect("restart", "web: [a.example.com]")
	if calls.redirect["web"] {
		t.Fatal("after a restart the redirect is on again: the policy was not kept")
	}

	if _, err := h.eng.DeleteService(ctx, "web", false); err != nil {
		t.Fatal(err)
	}
	expect("delete", "web: []")
}

func ptr[T any](v T) *T { return &v }
