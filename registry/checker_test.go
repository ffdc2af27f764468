package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/internal/testnet"
	"github.com/clank-dev/clank/store"
)

func TestCheckAvailableForEachSource(t *testing.T) {
	c := startClank(t)
	h := startHub(t)
	dockerConfig(t, map[string][2]string{h.addr: {hubUser, hubPassword}})

	regRef := c.addr + "/web:v1"
	regDigest := pushRandom(t, regRef, c.auth())
	pubRef := h.addr + "/library/nginx:1.27"
	pubDigest := pushRandom(t, pubRef, hubAuth())
	privRef := h.addr + "/private/app:v3"
	privDigest := pushRandom(t, privRef, hubAuth())
	chk := NewChecker(CheckerOptions{})
	for _, tc := range []struct {
		source, ref, digest string
	}{
		{store.SourceRegistry, regRef, regDigest},
		{store.SourceExternal, pubRef, pubDigest},
		{store.SourceExternal, privRef, privDigest}, // credentials from the Docker config
	} {
		t.Run(tc.source+" "+tc.ref, func(t *testing.T) {
			before := time.Now()
			r := chk.checkOne(context.Background(), tc.source, tc.ref, tc.digest)
			if r.State != store.AvailabilityAvailable {
				t.Fatalf("Check = %+v, want available", r)
			}
			if r.CheckedAt.Before(before) {
				t.Errorf("CheckedAt %v is before the check started (%v)", r.CheckedAt, before)
			}
		})
	}
}

func TestDeletedManifestFlipsToMissing(t *testing.T) {
	c := startClank(t)
	h := startHub(t)
	dockerConfig(t, nil)
	chk := NewChecker(CheckerOptions{})

	for _, tc := range []struct {
		source, ref string
		opts        bool
	}{
		{store.SourceRegistry, c.addr + "/web:v1", false},
		{store.SourceExternal, h.addr + "/library/redis:7", true},
	} {
		t.Run(tc.source, func(t *testing.T) {
			var d string
			if tc.opts {
				d = pushRandom(t, tc.ref, hubAuth())
			} else {
				d = pushRandom(t, tc.ref, c.auth())
			}
			if r := chk.checkOne(context.Background(), tc.source, tc.ref, d); r.State != store.AvailabilityAvailable {
				t.Fatalf("before delete: %+v, want available", r)
			}
			repo := tc.ref[:strings.LastIndex(tc.ref, ":")]
			if tc.opts {
				deleteRef(t, repo+"@"+d, hubAuth())
			} else {
				deleteRef(t, repo+"@"+d, c.auth())
			}
			r := chk.checkOne(context.Background(), tc.source, tc.ref, d)
			if r.State != store.AvailabilityMissing {
				t.Fatalf("after delete: %+v, want missing", r)
			}
			if !strings.Contains(r.Reason, "manifest unknown") || !strings.Contains(r.Reason, d) || !strings.Contains(r.Reason, "was deleted") {
				t.Errorf("reason %q: want it to say the manifest %s was deleted", r.Reason, d)
			}
		})
	}
}

func TestDeletedOrMovedTag(t *testing.T) {
	c := startClank(t)
	dockerConfig(t, nil)
	chk := NewChecker(CheckerOptions{})
	ctx := context.Background()
	ref := c.addr + "/api:stable"
	d1 := pushRandom(t, ref, c.auth())

	got, err := chk.TagDigest(ctx, ref)
	if err != nil || got != d1 {
		t.Fatalf("TagDigest = %q, %v; want %s", got, err, d1)
	}

	// The tag moves: the pinned digest is still there, the tag names another.
	d2 := pushRandom(t, ref, c.auth())
	if got, _ := chk.TagDigest(ctx, ref); got != d2 {
		t.Fatalf("TagDigest after a new push = %s, want %s", got, d2)
	}
	if r := chk.checkOne(ctx, store.SourceRegistry, ref, d1); r.State != store.AvailabilityAvailable {
		t.Fatalf("old digest after the tag moved: %+v, want available", r)
	}

	// The tag is deleted: digests stay available, the tag is gone.
	deleteRef(t, ref, c.auth())
	if _, err := chk.TagDigest(ctx, ref); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TagDigest of a deleted tag: err = %v, want ErrNotFound", err)
	}
	for _, d := range []string{d1, d2} {
		if r := chk.checkOne(ctx, store.SourceRegistry, ref, d); r.State != store.AvailabilityAvailable {
			t.Errorf("digest %s after its tag was deleted: %+v, want available", d, r)
		}
	}
}

func TestPrivateWithoutCredentialsIsMissingOrNoAccess(t *testing.T) {
	h := startHub(t)
	ref := h.addr + "/private/billing:v1"
	d := pushRandom(t, ref, hubAuth())

	for _, tc := range []struct {
		name  string
		auths map[string][2]string
	}{
		{"no credentials", nil},
		{"wrong password", map[string][2]string{h.addr: {hubUser, "nope"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dockerConfig(t, tc.auths)
			chk := NewChecker(CheckerOptions{})
			r := chk.checkOne(context.Background(), store.SourceExternal, ref, d)
			if r.State != store.AvailabilityMissing || r.Reason != "missing or no access (HTTP 401)" {
				t.Fatalf("Check = %+v, want missing with %q", r, "missing or no access (HTTP 401)")
			}
			if _, err := chk.TagDigest(context.Background(), ref); !errors.Is(err, ErrNoAccess) {
				t.Fatalf("TagDigest: err = %v, want ErrNoAccess", err)
			}
		})
	}
}

func TestServerErrorsAndTimeoutsAreUnknown(t *testing.T) {
	h := startHub(t)
	dockerConfig(t, nil)
	// Long enough that the hub's 500 and 429 always arrive in time on a loaded
	// machine; the slow repository answers only after 5 s.
	const timeout = 2 * time.Second
	chk := NewChecker(CheckerOptions{Timeout: timeout})
	d := "sha256:" + strings.Repeat("ab", 32)

	for _, tc := range []struct {
		repo, reason string
	}{
		{"broken/app", "HTTP 500"},
		{"limited/app", "HTTP 429"},
		{"slow/app", "no answer within 2s"},
	} {
		t.Run(tc.repo, func(t *testing.T) {
			start := time.Now()
			r := chk.checkOne(context.Background(), store.SourceExternal, h.addr+"/"+tc.repo+":v1", d)
			if r.State != store.AvailabilityUnknown {
				t.Fatalf("Check = %+v, want unknown", r)
			}
			if !strings.Contains(r.Reason, tc.reason) {
				t.Errorf("reason %q, want it to mention %q", r.Reason, tc.reason)
			}
			if took := time.Since(start); took > timeout+2*time.Second {
				t.Errorf("check took %s with a %s timeout", took, timeout)
			}
		})
	}

	t.Run("registry down", func(t *testing.T) {
		r := chk.checkOne(context.Background(), store.SourceRegistry, testnet.RefusedAddr(t)+"/web:v1", d)
		if r.State != store.AvailabilityUnknown || !strings.Contains(r.Reason, "unreachable") {
			t.Fatalf("Check = %+v, want unknown because unreachable", r)
		}
	})
}

func TestCheckManyMakesOneHeadPerDistinctDigest(t *testing.T) {
	c := startClank(t)
	h := startHub(t)
	dockerConfig(t, map[string][2]string{h.addr: {hubUser, hubPassword}})

	var items []Item
	var want []string
	// 3 repositories x 4 digests in the Clank registry, each deployed 5 times
	// under various tags (and once with the digest in the ref).
	distinct := 0
	for r := range 3 {
		repo := fmt.Sprintf("%s/svc%d", c.addr, r)
		for i := range 4 {
			d := pushRandom(t, fmt.Sprintf("%s:v%d", repo, i), c.auth())
			distinct++
			for k := range 5 {
				ref := fmt.Sprintf("%s:deploy-%d", repo, k)
				if k == 4 {
					ref = repo + ":v0@" + d
				}
				items = append(items, Item{Source: store.SourceRegistry, Ref: ref, Digest: d})
				want = append(want, store.AvailabilityAvailable)
			}
		}
	}
	// One deleted digest, deployed twice.
	gone := pushRandom(t, c.addr+"/svc0:old", c.auth())
	deleteRef(t, c.addr+"/svc0@"+gone, c.auth())
	distinct++
	for range 2 {
		items = append(items, Item{Source: store.SourceRegistry, Ref: c.addr + "/svc0:old", Digest: gone})
		want = append(want, store.AvailabilityMissing)
	}
	// A private external image, deployed 3 times.
	pd := pushRandom(t, h.addr+"/private/app:v1", hubAuth())
	for range 3 {
		items = append(items, Item{Source: store.SourceExternal, Ref: h.addr + "/private/app:v1", Digest: pd})
		want = append(want, store.AvailabilityAvailable)
	}
	// Local images are not a registry's: unknown here, and no request.
	for range 4 {
		items = append(items, Item{Source: store.SourceLocal, Ref: "myapp:dev", Digest: "sha256:aaaa"})
		want = append(want, store.AvailabilityUnknown)
	}

	// Two unpinned deployments of different tags are two checks.
	for _, tag := range []string{"v0", "v1"} {
		items = append(items, Item{Source: store.SourceRegistry, Ref: c.addr + "/svc1:" + tag})
		want = append(want, store.AvailabilityAvailable)
		distinct++
	}

	c.counter.heads.Store(0)
	h.counter.heads.Store(0)
	h.tokens.Store(0)
	chk := NewChecker(CheckerOptions{Concurrency: 4})
	results := chk.CheckMany(context.Background(), items)
	if len(results) != len(items) {
		t.Fatalf("%d results for %d items", len(results), len(items))
	}
	for i, r := range results {
		if r.State != want[i] {
			t.Errorf("item %d (%s %s %s): %+v, want %s", i, items[i].Source, items[i].Ref, items[i].Digest, r, want[i])
		}
	}
	if got := c.counter.heads.Load(); got != int64(distinct) {
		t.Errorf("Clank registry got %d manifest HEADs, want %d (one per distinct digest)", got, distinct)
	}
	if got := h.counter.heads.Load(); got != 1 {
		t.Errorf("hub got %d manifest HEADs, want 1", got)
	}
	if got := h.tokens.Load(); got != 1 {
		t.Errorf("hub issued %d tokens, want 1 (one per repository per refresh)", got)
	}

	// A second refresh HEADs again: nothing is cached between calls.
	chk.CheckMany(context.Background(), items)
	if got := c.counter.heads.Load(); got != 2*int64(distinct) {
		t.Errorf("after a second CheckMany: %d HEADs, want %d", got, 2*distinct)
	}
}

func TestCheckLocalAndSourceErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		chk    *Checker
		source string
		ref    string
		digest string
		want   string
		reason string
	}{
		{"local image", NewChecker(CheckerOptions{}), store.SourceLocal, "myapp:dev", "sha256:cafe", store.AvailabilityUnknown, "was never pushed"},
		{"bad source", NewChecker(CheckerOptions{}), "ftp", "myapp:dev", "", store.AvailabilityUnknown, "unknown image source"},
		{"bad ref", NewChecker(CheckerOptions{}), store.SourceRegistry, "Not A Ref!", "sha256:cafe", store.AvailabilityMissing, "invalid image reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.chk.checkOne(ctx, tc.source, tc.ref, tc.digest)
			if r.State != tc.want || !strings.Contains(r.Reason, tc.reason) {
				t.Fatalf("Check = %+v, want %s with %q", r, tc.want, tc.reason)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	const clankAddr = "127.0.0.1:5000"
	for _, tc := range []struct {
		ref            string
		pushedOrPulled bool
		want           string
	}{
		{"127.0.0.1:5000/web:v1", true, store.SourceRegistry},
		{"localhost:5000/web:v1", true, store.SourceRegistry},
		{"127.0.0.1:5000/team/web@sha256:" + strings.Repeat("a", 64), true, store.SourceRegistry},
		{"127.0.0.1:5001/web:v1", true, store.SourceExternal}, // another registry on loopback
		{"nginx:1.27", true, store.SourceExternal},            // pulled from Docker Hub
		{"docker.io/library/nginx:1.27", true, store.SourceExternal},
		{"ghcr.io/acme/api:v2", true, store.SourceExternal},
		{"myapp:dev", false, store.SourceLocal},             // built here, never pushed
		{"127.0.0.1:5000/web:v9", false, store.SourceLocal}, // tagged for the registry but not pushed yet
		{"ghcr.io/acme/api:dev", false, store.SourceLocal},
	} {
		if got := Classify(tc.ref, clankAddr, tc.pushedOrPulled); got != tc.want {
			t.Errorf("Classify(%q, %q, %v) = %q, want %q", tc.ref, clankAddr, tc.pushedOrPulled, got, tc.want)
		}
	}
	if got := Classify("localhost:5000/web:v1", "0.0.0.0:5000", true); got != store.SourceRegistry {
		t.Errorf("a registry listening on 0.0.0.0:5000 does not own localhost:5000 refs: %q", got)
	}
}
