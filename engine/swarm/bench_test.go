package swarm_test

import (
	"context"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/store"
)

// BenchmarkCutover measures a deploy from the request to ACTIVE (the new
// deployment started, probed, switched to; the old one's drain follows
// after) on the Docker runtime and on a single-node Swarm, in the same run,
// each deploy alternating between two registry images. ms/cutover is the
// mean; the Swarm's task scheduling and its host-mode port are what it adds.
func BenchmarkCutover(b *testing.B) {
	for _, rt := range []struct {
		name    string
		onSwarm bool
	}{{"runtime=docker", false}, {"runtime=swarm", true}} {
		b.Run(rt.name, func(b *testing.B) {
			h := newHarnessOn(b, rt.onSwarm)
			imgs := []string{h.image("web", "v1"), h.image("web", "v2")}
			h.service("web", imgs[0])
			h.act(deploy("web"))
			var total time.Duration
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				d := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: imgs[(i+1)%2]})
				total += time.Since(start)
				if d.Status != store.StatusActive {
					b.Fatalf("#%d: %s (%s)", d.Number, d.Status, d.FailureReason)
				}
				// The next deploy waits for this one's drain to end, so
				// that each measures a cutover alone.
				b.StopTimer()
				h.eventually(30*time.Second, func() string { return "the old deployment did not end" }, func() bool {
					ds, err := h.store.ListDeployments(context.Background(), "web", 2, 0)
					return err == nil && len(ds) == 2 && ds[1].Status == store.StatusInactive
				})
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/cutover")
		})
	}
}
