package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/clank-dev/clank/store"
)

// ServiceDeletion says what DeleteService did.
type ServiceDeletion struct {
	Containers  int           // containers stopped and removed
	Deployments int           // deployments kept as history (none with purge)
	Images      []PrunedImage // with purge: the local images removed, or kept with why
}

// DeleteService stops and removes a service's containers, takes its routes
// down, frees its domains and deletes it. Its deployment history and images
// stay (a service created again under its name gets the history back),
// unless purge: then its deployments and events go, and so do its local
// images that no other service needs (its registry images go at the next
// registry gc); a service deleted earlier may be purged too. It is refused
// while a deployment of the service is in progress, and while the Docker
// engine does not answer.
func (e *Engine) DeleteService(ctx context.Context, name string, purge bool) (ServiceDeletion, error) {
	var out ServiceDeletion
	if _, err := e.Service(ctx, name); err != nil && !(purge && errors.Is(err, ErrNotFound)) {
		return out, err // the store says whether there is anything to purge
	}
	// Held like a deployment in progress, so that none starts while it goes.
	e.mu.Lock()
	if busy, ok := e.inflight[name]; ok {
		e.mu.Unlock()
		return out, e.inProgress(ctx, Request{Service: name}, busy)
	}
	claim := newID("deleting-")
	e.inflight[name] = claim
	e.mu.Unlock()
	defer e.release(name, claim)

	if err := e.Ping(ctx); err != nil {
		return out, err
	}
	cs, err := e.rt.List(ctx, map[string]string{LabelOwner: e.owner, LabelService: name})
	if err != nil {
		return out, fmt.Errorf("%w: list the containers of %s: %v", ErrUnavailable, name, err)
	}
	var history []store.Deployment
	if purge {
		if history, err = e.store.ListDeployments(ctx, name, 0, 0); err != nil {
			return out, err
		}
	} else if out.Deployments, err = e.store.CountDeployments(ctx, name); err != nil {
		return out, err
	}
	// The route goes first, so that no request is sent to a container on its
	// way out, and its supervision, so that nothing starts it again; a
	// container that will not go is an orphan the next start removes.
	e.removeRoute(name)
	e.certs.Want(name, nil) // its certificates stay on disk, for the name's return
	for _, c := range cs {
		if err := e.rt.Stop(ctx, c.ID, e.opts.StopGrace); err != nil {
			e.log.Warn("remove a deleted service's container", "service", name, "container", c.Name, "err", err)
			continue
		}
		out.Containers++
	}
	out.Containers += e.removeSwarmServices(ctx, map[string]string{LabelService: name})
	if err := e.store.DeleteService(context.WithoutCancel(ctx), name, purge); err != nil {
		return out, e.storeErr(err, fmt.Sprintf("unknown service %q", name))
	}
	e.log.Info("service deleted", "service", name, "purge", purge, "containers", out.Containers)
	e.publish(Event{Type: EventService, Service: name, Message: "deleted"})
	if purge {
		others, err := e.store.ListServices(ctx)
		if err != nil {
			return out, err
		}
		needed, _, err := e.neededImages(ctx, others, e.opts.KeepImages)
		if err != nil {
			return out, err
		}
		if out.Images = e.removeImages(ctx, name, history, needed); len(out.Images) > 0 {
			e.recheckAll(ctx, true)
		}
	}
	return out, nil
}
