package registry

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/store"
)

// Images is the engine's ImageChecker on registries: which registry an image
// lives in (the Clank registry, or another), a manifest HEAD per distinct
// digest, and where a tag points now.
type Images struct {
	Checker *Checker
	// Clank is the Clank registry's address ("" if it is off).
	Clank string
}

var _ engine.ImageChecker = Images{}

// NewImages makes the checker of a daemon whose Clank registry listens on
// clankAddr ("" for none), with the Docker keychain for credentials.
func NewImages(clankAddr string) Images {
	return Images{Checker: NewChecker(CheckerOptions{}), Clank: clankAddr}
}

// Source implements engine.ImageChecker: a reference that names the Clank
// registry is the registry's, any other an external registry's.
func (im Images) Source(ref string) string {
	if r, err := name.ParseReference(stripDigest(ref)); err == nil && IsClankRegistry(r.Context().RegistryStr(), im.Clank) {
		return store.SourceRegistry
	}
	return store.SourceExternal
}

// CheckMany implements engine.ImageChecker: one HEAD per distinct digest.
func (im Images) CheckMany(ctx context.Context, images []store.ImageRef) []engine.Availability {
	items := make([]Item, len(images))
	for i, ref := range images {
		items[i] = Item{Source: ref.Source, Ref: ref.Image, Digest: ref.Digest}
	}
	results := im.Checker.CheckMany(ctx, items)
	out := make([]engine.Availability, len(results))
	for i, r := range results {
		out[i] = engine.Availability{State: r.State, Reason: r.Reason, CheckedAt: r.CheckedAt}
	}
	return out
}

// TagDigest implements engine.ImageChecker.
func (im Images) TagDigest(ctx context.Context, ref string) (string, error) {
	return im.Checker.TagDigest(ctx, ref)
}
