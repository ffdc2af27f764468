package engine_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// A deployment's health check says how it goes as it goes: each attempt's
// result (the app answering 500 with HEALTH=fail) is streamed with its
// attempt, as a probe event; every lifecycle step the stream carried is in
// the store, word for word. A check that passes records the attempt it
// passed on.
func TestProbeResultsAreStreamedAsRecorded(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	h.service("web", v1, map[string]string{"HEALTH": "fail"})
	timeout := 2 * time.Second
	if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{DeployTimeout: &timeout}); err != nil {
		t.Fatal(err)
	}
	events := h.eng.Subscribe(ctx)
	d, err := h.eng.Act(ctx, deploy("web"))
	if err != nil {
		t.Fatal(err)
	}
	var live []string
	var probes []string
	for done := false; !done; {
		select {
		case ev := <-events:
			if ev.Deployment == nil || ev.Deployment.ID != d.ID {
				continue
			}
			switch ev.Type {
			case engine.EventProbe:
				probes = append(probes, ev.Message)
			case engine.EventDeployment:
				live = append(live, ev.Message)
				done = ev.Deployment.Status == store.StatusFailed
			}
		case <-ctx.Done():
			t.Fatalf("the deployment did not fail; streamed %q", live)
		}
	}
	// 2 s at a 200 ms interval: 10 attempts; the app answers 500.
	var fives int
	for _, p := range probes {
		if strings.HasPrefix(p, "GET /healthz → HTTP 500 (attempt ") && strings.HasSuffix(p, " of 10)") {
			fives++
		}
	}
	if fives < 3 {
		t.Fatalf("%d attempts streamed as HTTP 500 over 2 s, want one per attempt: %q", fives, probes)
	}
	if len(probes) > 40 {
		t.Fatalf("%d probe events over 10 attempts: one per attempt or change, not per probe", len(probes))
	}
	stored, err := h.store.Events(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, e := range stored {
		kept = append(kept, e.Message)
	}
	if !slices.Equal(kept, live) {
		t.Fatalf("the store keeps\n%q\nthe stream said\n%q", kept, live)
	}

	// Healthy again: the pass is recorded, and streamed alike.
	if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{UnsetEnv: []string{"HEALTH"}}); err != nil {
		t.Fatal(err)
	}
	ok := h.act(deploy("web"))
	stored, err = h.store.Events(ctx, ok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(stored, func(e store.Event) bool {
		return strings.HasPrefix(e.Message, "GET /healthz passed (attempt ") && strings.HasSuffix(e.Message, " of 10)")
	}) {
		t.Fatalf("the pass is not recorded: %+v", stored)
	}
}

// RecheckImages checks again, now, the images of a service whose last
// check is older than the age given, and leaves the fresh ones.
func TestRecheckImagesChecksOnlyStaleOnes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	h.service("web", v1, nil)
	h.act(deploy("web"))
	if n, err := h.eng.RecheckImages(ctx, "web", 0); err != nil || n != 1 {
		t.Fatalf("RecheckImages(0) = %d, %v; want its one image checked", n, err)
	}
	if n, err := h.eng.RecheckImages(ctx, "web", time.Minute); err != nil || n != 0 {
		t.Fatalf("RecheckImages(1m) right after a check = %d, %v; want none", n, err)
	}
	if _, err := h.eng.RecheckImages(ctx, "nope", 0); err == nil {
		t.Fatal("RecheckImages of an unknown service: no error")
	}
}
