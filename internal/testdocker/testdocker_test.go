package testdocker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/docker"
	"github.com/clank-dev/clank/internal/testdocker"
)

func TestSampleImagesShareABaseAndAreRemoved(t *testing.T) {
	rt := testdocker.Require(t)
	ctx := context.Background()
	var refs []string
	t.Run("build", func(t *testing.T) {
		for _, version := range []string{"v1", "v2"} {
			start := time.Now()
			tag := testdocker.SampleImage(t, rt, version)
			t.Logf("SampleImage(%s) took %s", version, time.Since(start).Round(time.Millisecond))
			res, err := rt.Client().ImageInspect(ctx, tag)
			if err != nil {
				t.Fatal(err)
			}
			cfg := res.Config
			if cfg.Labels[testdocker.TestLabel] != "1" {
				t.Errorf("labels = %v, want %s=1", cfg.Labels, testdocker.TestLabel)
			}
			if !slices.Contains(cfg.Env, "VERSION="+version) || !slices.Equal(cfg.Entrypoint, []string{"/sampleapp"}) {
				t.Errorf("env = %v, entrypoint = %v", cfg.Env, cfg.Entrypoint)
			}
			base := "clank-test/sampleapp-base:" + cfg.Labels[testdocker.TestLabel+".base"]
			refs = append(refs, tag, base)
		}
		if refs[1] != refs[3] {
			t.Errorf("bases %s and %s: two images of one test should share one base", refs[1], refs[3])
		}
	})
	for _, ref := range refs {
		if _, err := rt.InspectImage(ctx, ref); !errors.Is(err, engine.ErrImageNotFound) {
			t.Errorf("after the test, %s: %v; want it removed", ref, err)
		}
	}
}

// BenchmarkSampleImage measures one SampleImage while the base image exists.
func BenchmarkSampleImage(b *testing.B) {
	rt := testdocker.Require(b)
	testdocker.SampleImage(b, rt, "warm") // compiles the binary, builds the base
	b.ResetTimer()
	for i := range b.N {
		testdocker.SampleImage(b, rt, fmt.Sprint("v", i))
	}
}

// The Docker proxy forwards, goes away (clients see the engine gone, their
// event streams end) and comes back on the same address.
func TestDockerProxyCutsAndRestores(t *testing.T) {
	testdocker.Require(t)
	p := testdocker.NewDockerProxy(t)
	rt := p.Runtime(t)
	ctx := context.Background()
	if err := rt.Ping(ctx); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	events, errs := rt.Events(ctx)
	p.Cut()
	select {
	case err := <-errs:
		if err == nil {
			t.Fatal("the event stream ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event stream outlived the cut")
	}
	for range events {
	}
	if err := rt.Ping(ctx); !docker.IsUnreachable(err) {
		t.Fatalf("ping while cut: %v, want unreachable", err)
	}
	p.Restore()
	if err := rt.Ping(ctx); err != nil {
		t.Fatalf("ping after the restore: %v", err)
	}
}
