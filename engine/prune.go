package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/clank-dev/clank/store"
)

// DefaultKeepImages is how many of a service's most recently ACTIVE
// deployments keep their local images when pruning.
const DefaultKeepImages = 5

// PrunedImage is one local image Prune removed (or could not).
type PrunedImage struct {
	Service    string
	Deployment int // the newest deployment number that used it
	Image      string
	Digest     string
	Source     string
	Err        error // why it was kept after all
}

// Prune removes the local images of each service's deployments beyond the
// last keep that were ACTIVE, never the current one's nor one an in-progress
// deployment uses. Local-only images pruned this way can no longer be rolled
// back to (they lose the badge); images in a registry keep it, and are
// pulled again on rollback. service "" prunes every service.
func (e *Engine) Prune(ctx context.Context, service string, keep int) ([]PrunedImage, error) {
	if keep < 1 {
		return nil, &invalid{fmt.Sprintf("invalid --keep %d: keep at least 1", keep)}
	}
	var services []store.Service
	if service != "" {
		svc, err := e.Service(ctx, service)
		if err != nil {
			return nil, err
		}
		services = []store.Service{svc}
	} else {
		all, err := e.store.ListServices(ctx)
		if err != nil {
			return nil, err
		}
		services = all
	}
	var out []PrunedImage
	for _, svc := range services {
		pruned, err := e.pruneService(ctx, svc, keep)
		if err != nil {
			return out, err
		}
		out = append(out, pruned...)
	}
	if len(out) > 0 {
		e.recheckAll(ctx, store.SourceLocal)
	}
	return out, nil
}

func (e *Engine) pruneService(ctx context.Context, svc store.Service, keep int) ([]PrunedImage, error) {
	all, err := e.store.ListActivated(ctx, svc.Name)
	if err != nil {
		return nil, err
	}
	// ListActivated has the most recently ACTIVE first: the first keep of
	// them stay, and so do the current one, a draining one and one in
	// progress, whatever their rank.
	kept := map[string]bool{} // pinned refs that stay
	var ranked []store.Deployment
	for _, d := range all {
		ref := PinnedRef(d.ImageSource, d.Config.Image, d.ImageDigest)
		switch {
		case d.ID == svc.ActiveDeploymentID || d.Status.InProgress() || d.Status == store.StatusDraining:
			kept[ref] = true
		}
		if d.ActivatedAt != nil && d.ImageDigest != "" {
			ranked = append(ranked, d)
		}
	}
	var out []PrunedImage
	for i, d := range ranked {
		ref := PinnedRef(d.ImageSource, d.Config.Image, d.ImageDigest)
		if i < keep || kept[ref] {
			kept[ref] = true
			continue
		}
		kept[ref] = true // once per image
		p := PrunedImage{Service: svc.Name, Deployment: d.Number, Image: d.Config.Image, Digest: d.ImageDigest, Source: d.ImageSource}
		if err := e.rt.RemoveImage(ctx, ref); err != nil {
			if errors.Is(err, ErrImageNotFound) {
				continue // gone already
			}
			p.Err = err
		}
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b PrunedImage) int { return cmp.Compare(b.Deployment, a.Deployment) })
	return out, nil
}
