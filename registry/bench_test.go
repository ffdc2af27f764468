package registry

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/registry/auth"

	"github.com/clank-dev/clank/store"
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
		pinned[i] = Item{Source: store.SourceRegistry, Ref: ref, Digest: pushRandom(b, ref, c.auth())}
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
			if r.State != store.AvailabilityAvailable {
				b.Fatalf("item %d: %+v", i, r)
			}
		}
		heads += n
	}
	b.ReportMetric(float64(heads)/float64(b.N), "heads/op")
}

// BenchmarkAccess is the access check of one push request: with a token (what
// Docker and go-containerregistry send after the token flow) and with Basic
// credentials (checked against htpasswd by bcrypt, at its lowest cost).
func BenchmarkAccess(b *testing.B) {
	s, err := NewServer(context.Background(), b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	cred := s.Credential()
	push := []auth.Access{{Resource: auth.Resource{Type: "repository", Name: "web"}, Action: "push"}}
	for name, header := range map[string]string{
		"token": "Bearer " + s.access.issue(true, time.Now().Add(time.Hour)),
		"basic": basic(cred.Username, cred.Password),
	} {
		b.Run(name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, "/v2/web/blobs/uploads/", nil)
			r.Header.Set("Authorization", header)
			for b.Loop() {
				if _, err := s.access.Authorized(r, push...); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
