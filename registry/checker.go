package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/clank-dev/clank/store"
)

// Defaults of the availability checker.
const (
	DefaultCheckConcurrency = 8
	DefaultCheckTimeout     = 10 * time.Second
)

// Sentinel errors of TagDigest.
var (
	ErrNotFound = errors.New("manifest unknown")     // the registry answered 404
	ErrNoAccess = errors.New("missing or no access") // the registry answered 401 or 403
)

// Result is the outcome of one availability check.
type Result struct {
	// State is store.AvailabilityAvailable, store.AvailabilityMissing (gone,
	// or no access to it: a rollback to it would fail) or
	// store.AvailabilityUnknown (could not tell: a rate limit, a 5xx, the
	// network; never taken for missing).
	State     string
	Reason    string // why, for anything but available
	CheckedAt time.Time
}

// CheckerOptions configures a Checker; zero values take the defaults.
type CheckerOptions struct {
	// Keychain resolves registry credentials; default authn.DefaultKeychain
	// (the user's Docker config and credential helpers).
	Keychain authn.Keychain
	// Concurrency bounds the checks in flight in CheckMany.
	Concurrency int
	// Insecure lists registry hosts ("host:port") reached over plain HTTP.
	// Loopback registries (127.0.0.0/8, localhost, ::1) always are.
	Insecure []string
	// Transport carries the HTTP requests; default a clone of
	// remote.DefaultTransport.
	Transport http.RoundTripper
	// Timeout bounds one check, authentication included.
	Timeout time.Duration
}

// Checker checks whether deployments' images can still be had from their
// registries: a manifest HEAD, never a pull (which Docker Hub counts against
// its rate limit). The local engine's copies are the engine's to check
// (engine.checkImages), local-only images included. It is safe for
// concurrent use.
type Checker struct {
	keychain    authn.Keychain
	concurrency int
	insecure    map[string]bool
	transport   http.RoundTripper
	timeout     time.Duration
	now         func() time.Time
	ownsTrans   bool // Close closes the idle connections of a transport it made
}

// NewChecker builds a Checker.
func NewChecker(opts CheckerOptions) *Checker {
	c := &Checker{
		keychain:    opts.Keychain,
		concurrency: opts.Concurrency,
		insecure:    map[string]bool{},
		transport:   opts.Transport,
		timeout:     opts.Timeout,
		now:         time.Now,
	}
	if c.keychain == nil {
		c.keychain = authn.DefaultKeychain
	}
	if c.concurrency <= 0 {
		c.concurrency = DefaultCheckConcurrency
	}
	if c.timeout <= 0 {
		c.timeout = DefaultCheckTimeout
	}
	if c.transport == nil {
		t := remote.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = c.concurrency
		c.transport = t
		c.ownsTrans = true
	}
	for _, h := range opts.Insecure {
		c.insecure[h] = true
	}
	return c
}

// Close releases the idle connections of the Checker's own transport (not
// those of CheckerOptions.Transport). The Checker still works afterwards.
func (c *Checker) Close() {
	if t, ok := c.transport.(*http.Transport); ok && c.ownsTrans {
		t.CloseIdleConnections()
	}
}

// Item is one image to check in CheckMany.
type Item struct {
	Source string // SourceRegistry, SourceExternal or SourceLocal
	Ref    string // "repo:tag" as deployed
	Digest string // "sha256:..." pinned at deploy time (for local images, the image ID)
}

// checkOne checks one image (CheckMany checks many): a HEAD of repo@digest,
// or of the tag when no digest was pinned.
func (c *Checker) checkOne(ctx context.Context, source, ref, digest string) Result {
	p, err := c.newPuller()
	if err != nil {
		return c.result(store.AvailabilityUnknown, err.Error())
	}
	return c.check(ctx, p, Item{Source: source, Ref: ref, Digest: digest})
}

// CheckMany checks items and returns their results in the same order. Items
// that share (source, repository, digest) are checked once: one HEAD per
// distinct digest per call, at most Concurrency at a time.
func (c *Checker) CheckMany(ctx context.Context, items []Item) []Result {
	results := make([]Result, len(items))
	p, err := c.newPuller()
	if err != nil {
		for i := range results {
			results[i] = c.result(store.AvailabilityUnknown, err.Error())
		}
		return results
	}

	byKey := map[string][]int{}
	var order []string
	for i, it := range items {
		k := c.dedupeKey(it)
		if _, seen := byKey[k]; !seen {
			order = append(order, k)
		}
		byKey[k] = append(byKey[k], i)
	}

	sem := make(chan struct{}, c.concurrency)
	var wg sync.WaitGroup
	for _, k := range order {
		idx := byKey[k]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r := c.check(ctx, p, items[idx[0]])
			for _, i := range idx {
				results[i] = r
			}
		}()
	}
	wg.Wait()
	return results
}

// dedupeKey is (source, canonical repository, digest); a ref that does not
// parse keys on itself and fails on its own.
func (c *Checker) dedupeKey(it Item) string {
	target := it.Ref // unpinned: the tag itself is what is checked
	switch {
	case it.Digest != "":
		if r, err := c.repository(it.Ref); err == nil {
			target = r.Name()
		}
	default:
		if r, err := c.parse(it.Ref); err == nil {
			target = r.Name()
		}
	}
	return it.Source + "\x00" + target + "\x00" + it.Digest
}

func (c *Checker) check(ctx context.Context, p *remote.Puller, it Item) Result {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	switch it.Source {
	case store.SourceLocal:
		return c.result(store.AvailabilityUnknown, fmt.Sprintf("%s was never pushed: no registry has it", displayRef(it.Ref, it.Digest)))
	case store.SourceRegistry, store.SourceExternal:
	default:
		return c.result(store.AvailabilityUnknown, fmt.Sprintf("unknown image source %q", it.Source))
	}
	ref, err := c.pinned(it.Ref, it.Digest)
	if err != nil {
		return c.result(store.AvailabilityMissing, fmt.Sprintf("invalid image reference %q: %v", it.Ref, err))
	}
	_, err = p.Head(ctx, ref)
	if err == nil {
		return c.result(store.AvailabilityAvailable, "")
	}
	return c.errorResult(ctx, ref.String(), err)
}

// errorResult maps a failed HEAD to a state: only a 404 (and 401/403, which
// registries such as Docker Hub also answer for a repository that does not
// exist) mean missing; rate limits, server errors and the network mean
// unknown.
func (c *Checker) errorResult(ctx context.Context, ref string, err error) Result {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return c.result(store.AvailabilityMissing, fmt.Sprintf("manifest unknown: %s was deleted", ref))
		case http.StatusUnauthorized, http.StatusForbidden:
			return c.result(store.AvailabilityMissing, fmt.Sprintf("missing or no access (HTTP %d)", terr.StatusCode))
		case http.StatusTooManyRequests:
			return c.result(store.AvailabilityUnknown, "rate limited by the registry (HTTP 429)")
		default:
			return c.result(store.AvailabilityUnknown, fmt.Sprintf("registry answered HTTP %d", terr.StatusCode))
		}
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return c.result(store.AvailabilityUnknown, "check cancelled")
	}
	if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
		return c.result(store.AvailabilityUnknown, fmt.Sprintf("no answer within %s", c.timeout))
	}
	var nerr net.Error
	if errors.As(err, &nerr) {
		return c.result(store.AvailabilityUnknown, fmt.Sprintf("registry unreachable: %v", err))
	}
	return c.result(store.AvailabilityUnknown, err.Error())
}

// TagDigest returns the digest ref's tag points at now (HEAD of the tag).
// A tag that is gone gives ErrNotFound, 401/403 ErrNoAccess.
func (c *Checker) TagDigest(ctx context.Context, ref string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	tag, err := c.parse(stripDigest(ref))
	if err != nil {
		return "", fmt.Errorf("tag digest of %q: %w", ref, err)
	}
	p, err := c.newPuller()
	if err != nil {
		return "", fmt.Errorf("tag digest of %q: %w", ref, err)
	}
	desc, err := p.Head(ctx, tag)
	if err != nil {
		var terr *transport.Error
		if errors.As(err, &terr) {
			switch terr.StatusCode {
			case http.StatusNotFound:
				return "", fmt.Errorf("tag digest of %s: %w", tag, ErrNotFound)
			case http.StatusUnauthorized, http.StatusForbidden:
				return "", fmt.Errorf("tag digest of %s: %w (HTTP %d)", tag, ErrNoAccess, terr.StatusCode)
			}
		}
		return "", fmt.Errorf("tag digest of %s: %w", tag, err)
	}
	return desc.Digest.String(), nil
}

func (c *Checker) newPuller() (*remote.Puller, error) {
	never := func(error) bool { return false }
	p, err := remote.NewPuller(
		remote.WithAuthFromKeychain(c.keychain),
		remote.WithTransport(c.transport),
		// A check is repeated by the background refresh; retrying here would
		// only multiply HEADs and hide a 429.
		remote.WithRetryPredicate(never),
		remote.WithRetryStatusCodes(),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	)
	if err != nil {
		return nil, fmt.Errorf("registry client: %w", err)
	}
	return p, nil
}

// pinned is ref's repository at digest; without one, the digest in ref
// ("repo:tag@sha256:..."), else the tag.
func (c *Checker) pinned(ref, digest string) (name.Reference, error) {
	if digest == "" {
		if _, d, ok := strings.Cut(ref, "@"); ok {
			digest = d
		} else {
			return c.parse(ref)
		}
	}
	repo, err := c.repository(ref)
	if err != nil {
		return nil, err
	}
	return name.NewDigest(repo.Name()+"@"+digest, c.nameOptions(repo.RegistryStr())...)
}

func (c *Checker) repository(ref string) (name.Repository, error) {
	r, err := c.parse(stripDigest(ref))
	if err != nil {
		return name.Repository{}, err
	}
	return r.Context(), nil
}

func (c *Checker) parse(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if opts := c.nameOptions(r.Context().RegistryStr()); len(opts) > 0 {
		return name.ParseReference(ref, opts...)
	}
	return r, nil
}

func (c *Checker) nameOptions(registry string) []name.Option {
	if c.insecure[registry] || isLoopbackHost(registry) {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (c *Checker) result(s, reason string) Result {
	return Result{State: s, Reason: reason, CheckedAt: c.now()}
}

// stripDigest drops "@sha256:..." from "repo:tag@sha256:...".
func stripDigest(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[:i]
	}
	return ref
}

func displayRef(ref, digest string) string {
	if digest == "" {
		return ref
	}
	return ref + " (" + digest + ")"
}
