package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/distribution/reference"

	"github.com/clank-dev/clank/store"
)

// AvailabilityRefresh is how often every known image is checked again.
const AvailabilityRefresh = 5 * time.Minute

// ImageRecheckAge is how old a check of a service's images may be when
// someone opens its deployments (RecheckImages): the badge a person looks at
// is at most this stale.
const ImageRecheckAge = 30 * time.Second

// Availability says whether a deployment's image can still be run, and why.
type Availability struct {
	State     string
	Via       string // where an available image was confirmed: store.ViaLocal or store.ViaRegistry
	Reason    string
	CheckedAt time.Time
}

// ImageChecker is what the engine asks of registries (it imports none: the
// daemon wires the registry package's): which registry an image lives in,
// whether registries still hold digests, and where a tag points now. The
// local engine's copies the engine checks itself (checkImages).
type ImageChecker interface {
	// Source says where ref's image lives once pushed or pulled:
	// store.SourceRegistry in the Clank registry, store.SourceExternal in
	// any other.
	Source(ref string) string
	// CheckMany checks each image in its registry, each distinct one once:
	// a manifest HEAD, never a pull.
	CheckMany(ctx context.Context, images []store.ImageRef) []Availability
	// TagDigest is the digest ref's tag points at now in its registry.
	TagDigest(ctx context.Context, ref string) (string, error)
}

// localImages is the ImageChecker of an engine without registry checks: no
// image is the Clank registry's, and an image the local engine lacks (the
// engine asked it first) is missing.
type localImages struct{}

func (localImages) Source(string) string { return store.SourceExternal }

func (localImages) CheckMany(_ context.Context, images []store.ImageRef) []Availability {
	out := make([]Availability, len(images))
	for i, im := range images {
		out[i] = Availability{State: store.AvailabilityMissing, Reason: RemovedLocally(im.Image, im.Digest), CheckedAt: time.Now()}
	}
	return out
}

func (localImages) TagDigest(context.Context, string) (string, error) {
	return "", errors.New("no registry checks configured")
}

// RemovedLocally is why a local image is missing: the engine no longer has it.
func RemovedLocally(ref, digest string) string {
	return fmt.Sprintf("image %s (%s) was removed from the local Docker engine", ref, ShortDigest(digest))
}

// PinnedRef is the reference that runs exactly the image recorded at deploy
// time: the image ID for a local image (that is its digest), repo@digest for
// an image from a registry.
func PinnedRef(source, ref, digest string) string {
	if digest == "" {
		return ref
	}
	if source == store.SourceLocal {
		return digest
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return digest
	}
	return reference.TrimNamed(named).String() + "@" + digest
}

type availabilityCache struct {
	mu      sync.RWMutex
	m       map[string]Availability // by availKey
	pending chan store.ImageRef
	queued  map[string]bool
	// held holds the local image IDs of every image a check found in the
	// local engine: once a full check ran (fullChecked), only the removal
	// of one of these can change an availability, so the removals of other
	// images (a shared Docker host's) cost nothing.
	held        map[string]bool
	fullChecked bool
}

func (c *availabilityCache) init() {
	c.m = map[string]Availability{}
	c.queued = map[string]bool{}
	c.held = map[string]bool{}
	c.pending = make(chan store.ImageRef, 1024)
}

func imageOf(d store.Deployment) store.ImageRef {
	return store.ImageRef{Source: d.ImageSource, Image: d.Config.Image, Digest: d.ImageDigest}
}

func availKey(im store.ImageRef) string { return im.Source + "|" + im.Image + "|" + im.Digest }

// loadAvailability warms the cache with what the store kept.
func (e *Engine) loadAvailability(ctx context.Context) {
	as, err := e.store.ListAvailability(ctx)
	if err != nil {
		e.log.Warn("load image availability", "err", err)
		return
	}
	e.avail.mu.Lock()
	for _, a := range as {
		e.avail.m[a.Key] = Availability{State: a.State, Via: a.Via, Reason: a.Reason, CheckedAt: a.CheckedAt}
	}
	e.avail.mu.Unlock()
}

// ImageAvailability is the last known availability of d's image. It never
// waits: an image not checked yet is Unknown and queued for a check.
func (e *Engine) ImageAvailability(d store.Deployment) Availability {
	if d.ImageDigest == "" {
		return Availability{State: store.AvailabilityUnknown, Reason: "no image digest recorded"}
	}
	im := imageOf(d)
	k := availKey(im)
	e.avail.mu.RLock()
	a, ok := e.avail.m[k]
	e.avail.mu.RUnlock()
	if ok {
		return a
	}
	e.avail.mu.Lock()
	if !e.avail.queued[k] {
		select {
		case e.avail.pending <- im:
			e.avail.queued[k] = true
		default: // the checker is busy: the next refresh gets it
		}
	}
	e.avail.mu.Unlock()
	return Availability{State: store.AvailabilityUnknown, Reason: "not checked yet"}
}

// CheckImage checks d's image now, keeps the result and publishes a change.
func (e *Engine) CheckImage(ctx context.Context, d store.Deployment) Availability {
	if d.ImageDigest == "" {
		return Availability{State: store.AvailabilityUnknown, Reason: "no image digest recorded"}
	}
	im := imageOf(d)
	a := e.checkImages(ctx, []store.ImageRef{im})[0]
	e.record(ctx, im, a)
	return a
}

// RecheckImages checks again, now, each image of service's deployments that
// were ever ACTIVE whose last check is older than maxAge, and says how many
// it checked. Changes are kept and published as any check's (EventAvailability).
func (e *Engine) RecheckImages(ctx context.Context, service string, maxAge time.Duration) (int, error) {
	if _, err := e.store.GetService(ctx, service); err != nil {
		return 0, err
	}
	images, err := e.store.ServiceImages(ctx, service)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	e.avail.mu.RLock()
	images = slices.DeleteFunc(images, func(im store.ImageRef) bool {
		a, ok := e.avail.m[availKey(im)]
		return ok && now.Sub(a.CheckedAt) < maxAge
	})
	e.avail.mu.RUnlock()
	for i, a := range e.checkImages(ctx, images) {
		e.record(ctx, images[i], a)
	}
	return len(images), nil
}

// checkImages says, for each image, whether a rollback to it could run. An
// image whose exact digest the local engine holds can, whatever its source:
// that is the copy a rollback runs, so a registry that answers 401 or 5xx, or
// does not answer, cannot block it. Otherwise a local-only image is missing,
// and a registry or external one is as its registry says (docs/architecture.md:
// what a rollback may rely on remotely), each distinct one asked once.
func (e *Engine) checkImages(ctx context.Context, images []store.ImageRef) []Availability {
	out := make([]Availability, len(images))
	var remote []store.ImageRef
	var at []int
	var found []string
	defer func() {
		e.avail.mu.Lock()
		for _, id := range found {
			e.avail.held[id] = true
		}
		e.avail.mu.Unlock()
	}()
	for i, im := range images {
		info, err := e.rt.InspectImage(ctx, PinnedRef(im.Source, im.Image, im.Digest))
		switch {
		case err == nil:
			found = append(found, info.ID)
			out[i] = Availability{State: store.AvailabilityAvailable, Via: store.ViaLocal, CheckedAt: time.Now()}
		case im.Source != store.SourceLocal:
			remote, at = append(remote, im), append(at, i)
		case errors.Is(err, ErrImageNotFound):
			out[i] = Availability{State: store.AvailabilityMissing, Reason: RemovedLocally(im.Image, im.Digest), CheckedAt: time.Now()}
		default:
			out[i] = Availability{State: store.AvailabilityUnknown, Reason: err.Error(), CheckedAt: time.Now()}
		}
	}
	if len(remote) > 0 {
		for j, a := range e.images.CheckMany(ctx, remote) {
			if a.State == store.AvailabilityAvailable {
				a.Via = store.ViaRegistry
			}
			out[at[j]] = a
		}
	}
	return out
}

// record keeps a's result in the cache and the store, and tells subscribers
// when the state changed.
func (e *Engine) record(ctx context.Context, im store.ImageRef, a Availability) {
	k := availKey(im)
	e.avail.mu.Lock()
	old, had := e.avail.m[k]
	e.avail.m[k] = a
	delete(e.avail.queued, k)
	e.avail.mu.Unlock()
	if had && old.State == a.State && old.Via == a.Via {
		return
	}
	if err := e.store.PutAvailability(context.WithoutCancel(ctx), store.Availability{Key: k, State: a.State, Via: a.Via, Reason: a.Reason, CheckedAt: a.CheckedAt}); err != nil {
		e.log.Warn("record image availability", "image", im.Image, "err", err)
	}
	e.publish(Event{Type: EventAvailability, Message: fmt.Sprintf("%s@%s: %s (%s)", im.Image, ShortDigest(im.Digest), a.State, a.Reason)})
}

// RollbackCapable: d was ACTIVE at some point, is not the current ACTIVE
// deployment, and its image is confirmed available (CanRollBackTo).
func (e *Engine) RollbackCapable(d store.Deployment, activeID string) bool {
	return CanRollBackTo(d, activeID, e.ImageAvailability(d))
}

// CanRollBackTo is the rule of the "Rollback capable" badge: d was ACTIVE at
// some point, is not the current ACTIVE deployment (activeID), and a, its
// image's availability, is confirmed. Whoever shows the badge asks here.
func CanRollBackTo(d store.Deployment, activeID string, a Availability) bool {
	return d.ActivatedAt != nil && d.ID != activeID && a.State == store.AvailabilityAvailable
}

// refreshAvailabilityLoop checks queued images at once and every image of a
// deployment that was ever ACTIVE every AvailabilityRefresh.
func (e *Engine) refreshAvailabilityLoop(ctx context.Context) {
	e.recheckAll(ctx, false)
	tick := time.NewTicker(AvailabilityRefresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case im := <-e.avail.pending:
			e.record(ctx, im, e.checkImages(ctx, []store.ImageRef{im})[0])
		case <-tick.C:
			e.recheckAll(ctx, false)
		case <-e.recheck:
			e.recheckAll(ctx, true)
		}
	}
}

// recheckAll checks every image of a deployment that was ever ACTIVE; with
// heldOnly, only those that stood on a local copy (local-only images, and
// any confirmed via local): what an image removal can change.
func (e *Engine) recheckAll(ctx context.Context, heldOnly bool) {
	images, err := e.store.Images(ctx, true)
	if err != nil {
		e.log.Warn("list images to check", "err", err)
		return
	}
	if heldOnly {
		e.avail.mu.RLock()
		images = slices.DeleteFunc(images, func(im store.ImageRef) bool {
			return im.Source != store.SourceLocal && e.avail.m[availKey(im)].Via != store.ViaLocal
		})
		e.avail.mu.RUnlock()
	}
	for i, a := range e.checkImages(ctx, images) {
		e.record(ctx, images[i], a)
	}
	if !heldOnly {
		e.avail.mu.Lock()
		e.avail.fullChecked = true
		e.avail.mu.Unlock()
	}
}

// holdsImage reports whether the removal of local image id (a Docker image
// event's) can change an availability: id is one a check found, or no full
// check ran yet.
func (e *Engine) holdsImage(id string) bool {
	e.avail.mu.RLock()
	defer e.avail.mu.RUnlock()
	return !e.avail.fullChecked || e.avail.held[id]
}
