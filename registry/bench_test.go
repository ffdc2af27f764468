package registry

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkAvailability1000 is one cold availability refresh of 1,000
// deployments over 200 distinct digests (10 repositories) in the embedded
// registry: a fresh Checker per op, exactly one HEAD per distinct digest.
func BenchmarkAvailability1000(b *testing.B) {
	const (
		deployments = 1000
		digests     = 200
		repos       = 10
	)
	c := startClank(b)
	dockerConfig(b, nil)
	pinned := make([]Item, digests)
	for i := range digests {
		repo := fmt.Sprintf("%s/svc%02d", c.addr, i%repos)
		ref := fmt.Sprintf("%s:build-%d", repo, i)
		pinned[i] = Item{Source: SourceRegistry, Ref: ref, Digest: pushRandom(b, ref, c.auth())}
	}
	items := make([]Item, deployments)
	for i := range items {
		it := pinned[i%digests]
		// Deployments of one digest under several tags still share one HEAD.
		it.Ref = fmt.Sprintf("%s-d%d", it.Ref, i/digests)
		items[i] = it
	}

	ctx := context.Background()
	var heads int64
	b.ResetTimer()
	for b.Loop() {
		before := c.counter.heads.Load()
		chk := NewChecker(CheckerOptions{})
		results := chk.CheckMany(ctx, items)
		chk.Close()
		n := c.counter.heads.Load() - before
		if n != digests {
			b.Fatalf("%d manifest HEADs for %d distinct digests", n, digests)
		}
		for i, r := range results {
			if r.State != Available {
				b.Fatalf("item %d: %+v", i, r)
			}
		}
		heads += n
	}
	b.ReportMetric(float64(heads)/float64(b.N), "heads/op")
}
