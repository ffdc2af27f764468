package engine

import (
	"context"
	"errors"

	"github.com/clank-dev/clank/registry"
	"github.com/clank-dev/clank/store"
)

// RegistryImages is the ImageChecker of a daemon with registry checks: a
// manifest HEAD for registry and external images (through the Docker
// keychain), the local engine for images built here.
type RegistryImages struct{ Checker *registry.Checker }

// NewRegistryImages makes the checker, with rt answering for local images.
func NewRegistryImages(rt Runtime) RegistryImages {
	return RegistryImages{registry.NewChecker(registry.CheckerOptions{Local: localInspector{rt}})}
}

func availabilityOf(r registry.Result) Availability {
	return Availability{State: string(r.State), Reason: r.Reason, CheckedAt: r.CheckedAt}
}

// Check implements ImageChecker.
func (ri RegistryImages) Check(ctx context.Context, source, ref, digest string) Availability {
	return availabilityOf(ri.Checker.Check(ctx, source, ref, digest))
}

// CheckMany implements ImageChecker: one HEAD per distinct digest.
func (ri RegistryImages) CheckMany(ctx context.Context, images []store.ImageRef) []Availability {
	items := make([]registry.Item, len(images))
	for i, im := range images {
		items[i] = registry.Item{Source: im.Source, Ref: im.Image, Digest: im.Digest}
	}
	results := ri.Checker.CheckMany(ctx, items)
	out := make([]Availability, len(results))
	for i, r := range results {
		out[i] = availabilityOf(r)
	}
	return out
}

// TagDigest implements ImageChecker.
func (ri RegistryImages) TagDigest(ctx context.Context, ref string) (string, error) {
	return ri.Checker.TagDigest(ctx, ref)
}

// localInspector answers the registry checker's questions about local images.
type localInspector struct{ rt Runtime }

func (l localInspector) InspectImage(ctx context.Context, ref string) (bool, error) {
	_, err := l.rt.InspectImage(ctx, ref)
	if errors.Is(err, ErrImageNotFound) {
		return false, nil
	}
	return err == nil, err
}
