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
// last keep that were ACTIVE. It never removes an image that any service
// still needs: one of its last keep ACTIVE deployments, its current one, one
// in progress or draining, a warm standby. Images are compared by their local image ID, so an
// image two services run under different names counts for both. Local-only
// images pruned this way can no longer be rolled back to (they lose the
// badge); images in a registry keep it, and are pulled again on rollback.
// service "" prunes every service.
func (e *Engine) Prune(ctx context.Context, service string, keep int) ([]PrunedImage, error) {
	if keep < 1 {
		return nil, &invalid{fmt.Sprintf("invalid --keep %d: keep at least 1", keep)}
	}
	all, err := e.store.ListServices(ctx)
	if err != nil {
		return nil, err
	}
	services := all
	if service != "" {
		svc, err := e.Service(ctx, service)
		if err != nil {
			return nil, err
		}
		services = []store.Service{svc}
	}
	needed, history, err := e.neededImages(ctx, all, keep)
	if err != nil {
		return nil, err
	}
	var out []PrunedImage
	for _, svc := range services {
		out = append(out, e.removeImages(ctx, svc.Name, beyondKeep(history[svc.Name], keep), needed)...)
	}
	slices.SortFunc(out, func(a, b PrunedImage) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(b.Deployment, a.Deployment))
	})
	if len(out) > 0 {
		e.recheckAll(ctx, true)
	}
	return out, nil
}

// neededImages are the local image IDs that services still need (see
// neededDeployments), with each service's ListActivated by name.
func (e *Engine) neededImages(ctx context.Context, services []store.Service, keep int) (map[string]bool, map[string][]store.Deployment, error) {
	history := make(map[string][]store.Deployment, len(services))
	needed := map[string]bool{}
	for _, svc := range services {
		ds, err := e.store.ListActivated(ctx, svc.Name)
		if err != nil {
			return nil, nil, err
		}
		history[svc.Name] = ds
		for _, d := range neededDeployments(svc, ds, keep) {
			if info, err := e.rt.InspectImage(ctx, PinnedRef(d.ImageSource, d.Config.Image, d.ImageDigest)); err == nil {
				needed[info.ID] = true
			}
		}
	}
	return needed, history, nil
}

// neededDeployments are the deployments of svc whose images stay: the first
// keep of those that were ACTIVE (ds has the most recently ACTIVE first), and
// the current, in-progress, draining and warm standby ones whatever their rank.
func neededDeployments(svc store.Service, ds []store.Deployment, keep int) []store.Deployment {
	var out []store.Deployment
	ranked := 0
	for _, d := range ds {
		inWindow := false
		if d.ActivatedAt != nil && d.ImageDigest != "" {
			inWindow = ranked < keep
			ranked++
		}
		if keep < 0 {
			inWindow = true // keep everything
		}
		if inWindow || d.ID == svc.ActiveDeploymentID || d.Status.InProgress() || d.Status == store.StatusDraining || d.WarmUntil != nil {
			out = append(out, d)
		}
	}
	return out
}

// beyondKeep are the deployments of ds (a ListActivated, the most recently
// ACTIVE first) that were ACTIVE, ranked after the first keep.
func beyondKeep(ds []store.Deployment, keep int) []store.Deployment {
	var out []store.Deployment
	ranked := 0
	for _, d := range ds {
		if d.ActivatedAt == nil || d.ImageDigest == "" {
			continue
		}
		if ranked++; ranked > keep {
			out = append(out, d)
		}
	}
	return out
}

// removeImages removes the local images of service's deployments ds, each
// once, unless needed (by image ID) says some part of Clank still needs it.
func (e *Engine) removeImages(ctx context.Context, service string, ds []store.Deployment, needed map[string]bool) []PrunedImage {
	var out []PrunedImage
	for _, d := range ds {
		if d.ImageDigest == "" {
			continue
		}
		ref := PinnedRef(d.ImageSource, d.Config.Image, d.ImageDigest)
		info, err := e.rt.InspectImage(ctx, ref)
		if errors.Is(err, ErrImageNotFound) || (err == nil && needed[info.ID]) {
			continue // gone already, or still needed
		}
		p := PrunedImage{Service: service, Deployment: d.Number, Image: d.Config.Image, Digest: d.ImageDigest, Source: d.ImageSource, Err: err}
		if err == nil {
			needed[info.ID] = true // once per image
			if err := e.rt.RemoveImage(ctx, ref); err != nil {
				if errors.Is(err, ErrImageNotFound) {
					continue
				}
				p.Err = err
			}
		}
		out = append(out, p)
	}
	return out
}
