package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/distribution/reference"

	"github.com/clank-dev/clank/store"
)

// Image availability states (DESIGN.md: image_availability).
const (
	Available = "available"
	Missing   = "missing"
	Unknown   = "unknown"
)

// AvailabilityRefresh is how often every known image is checked again.
const AvailabilityRefresh = 5 * time.Minute

// Availability says whether a deployment's image can still be run, and why.
type Availability struct {
	State     string
	Reason    string
	CheckedAt time.Time
}

// ImageChecker confirms that an image pinned by digest can still be run:
// in the local engine, or in the registry it came from.
type ImageChecker interface {
	Check(ctx context.Context, source, ref, digest string) Availability
}

// LocalImages checks the local engine alone.
type LocalImages struct{ Runtime Runtime }

// Check implements ImageChecker.
func (l LocalImages) Check(ctx context.Context, source, ref, digest string) Availability {
	now := time.Now()
	_, err := l.Runtime.InspectImage(ctx, PinnedRef(source, ref, digest))
	switch {
	case err == nil:
		return Availability{State: Available, Reason: "in the local Docker engine", CheckedAt: now}
	case errors.Is(err, ErrImageNotFound):
		return Availability{State: Missing, Reason: fmt.Sprintf("image %s (%s) was removed from the local Docker engine", ref, ShortDigest(digest)), CheckedAt: now}
	default:
		return Availability{State: Unknown, Reason: err.Error(), CheckedAt: now}
	}
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
	m       map[string]Availability // by source|digest
	pending chan store.Deployment
	queued  map[string]bool
}

func (c *availabilityCache) init() {
	c.m = map[string]Availability{}
	c.queued = map[string]bool{}
	c.pending = make(chan store.Deployment, 1024)
}

func availKey(d store.Deployment) string {
	return d.ImageSource + "|" + d.Config.Image + "|" + d.ImageDigest
}

// ImageAvailability is the last known availability of d's image. It never
// waits: an image not checked yet is Unknown and queued for a check.
func (e *Engine) ImageAvailability(d store.Deployment) Availability {
	if d.ImageDigest == "" {
		return Availability{State: Unknown, Reason: "no image digest recorded"}
	}
	k := availKey(d)
	e.avail.mu.RLock()
	a, ok := e.avail.m[k]
	e.avail.mu.RUnlock()
	if ok {
		return a
	}
	e.avail.mu.Lock()
	if !e.avail.queued[k] {
		select {
		case e.avail.pending <- d:
			e.avail.queued[k] = true
		default: // the checker is busy: the next refresh gets it
		}
	}
	e.avail.mu.Unlock()
	return Availability{State: Unknown, Reason: "not checked yet"}
}

// CheckImage checks d's image now, keeps the result and publishes a change.
func (e *Engine) CheckImage(ctx context.Context, d store.Deployment) Availability {
	if d.ImageDigest == "" {
		return Availability{State: Unknown, Reason: "no image digest recorded"}
	}
	a := e.images.Check(ctx, d.ImageSource, d.Config.Image, d.ImageDigest)
	k := availKey(d)
	e.avail.mu.Lock()
	old, had := e.avail.m[k]
	e.avail.m[k] = a
	delete(e.avail.queued, k)
	e.avail.mu.Unlock()
	if !had || old.State != a.State {
		e.publish(Event{Type: EventAvailability, Service: d.Service, Deployment: &d, Message: a.State + ": " + a.Reason})
	}
	return a
}

// RollbackCapable: d was ACTIVE at some point, is not the current ACTIVE
// deployment, and its image is confirmed available.
func (e *Engine) RollbackCapable(d store.Deployment, activeID string) bool {
	return d.ActivatedAt != nil && d.ID != activeID && e.ImageAvailability(d).State == Available
}

// refreshAvailabilityLoop checks queued images at once and every known image
// every AvailabilityRefresh.
func (e *Engine) refreshAvailabilityLoop(ctx context.Context) {
	tick := time.NewTicker(AvailabilityRefresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-e.avail.pending:
			e.CheckImage(ctx, d)
		case <-tick.C:
			e.recheckAll(ctx, "")
		}
	}
}

// recheckAll checks again every image known to the cache (only those of
// source, when source is not "").
func (e *Engine) recheckAll(ctx context.Context, source string) {
	services, err := e.store.ListServices(ctx)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, svc := range services {
		ds, err := e.store.ListDeployments(ctx, svc.Name, 1000, 0)
		if err != nil {
			continue
		}
		for _, d := range ds {
			k := availKey(d)
			if d.ActivatedAt == nil || seen[k] || (source != "" && d.ImageSource != source) {
				continue
			}
			seen[k] = true
			e.CheckImage(ctx, d)
		}
	}
}

// watchRuntime follows the Docker engine's events: a removed image is checked
// again at once, so its badge goes within seconds.
func (e *Engine) watchRuntime(ctx context.Context) {
	for ctx.Err() == nil {
		events, errs := e.rt.Events(ctx)
		func() {
			for {
				select {
				case <-ctx.Done():
					return
				case err := <-errs:
					if err != nil && ctx.Err() == nil {
						e.log.Debug("runtime events ended", "err", err)
					}
					return
				case ev, ok := <-events:
					if !ok {
						return
					}
					if ev.Type == "image" && (ev.Action == "delete" || ev.Action == "untag") {
						e.recheckAll(ctx, "")
					}
				}
			}
		}()
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second): // the engine went away: try again
		}
	}
}
