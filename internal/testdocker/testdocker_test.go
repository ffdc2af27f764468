package testdocker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
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
