package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clank-dev/clank/store"
)

// RecoverHold is how long the router holds the requests of a service whose
// ACTIVE container just stopped answering (a crash, Docker going away),
// waiting for a restart or a rollback to bring a healthy one, before it
// answers 503 with Retry-After.
const RecoverHold = 5 * time.Second

// routes says which deployment owns each service's route: the ACTIVE one, or
// the one cutting over. Every switch goes through it, under its lock, so that
// a supervisor that brings a replaced deployment's container back can never
// route it again over its successor.
type routes struct {
	owner map[string]string // service -> deployment id
}

// takeRoute makes deployment id the owner of service's route and points the
// route at backends (verified replicas'); it returns the previous owner and
// backends.
func (e *Engine) takeRoute(service, id string, domains []string, backends []string) (prevOwner string, prevBackends []string) {
	e.routeMu.Lock()
	defer e.routeMu.Unlock()
	prevOwner = e.routes.owner[service]
	e.routes.owner[service] = id
	return prevOwner, e.router.SetRoute(service, domains, backends...)
}

// giveBackRoute undoes takeRoute after a failed activation: the route goes
// back to its previous owner and backends (503 if there were none).
func (e *Engine) giveBackRoute(service, id, prevOwner string, domains []string, prevBackends []string) {
	e.routeMu.Lock()
	defer e.routeMu.Unlock()
	if e.routes.owner[service] != id {
		return
	}
	e.routes.owner[service] = prevOwner
	e.router.SetRoute(service, domains, prevBackends...)
}

// routeIfOwner points service's route at backends for deployment id, if id
// still owns it; no backend makes the service unavailable for now (requests
// wait up to hold for a backend, then get 503 with Retry-After retry).
func (e *Engine) routeIfOwner(id, service string, domains []string, backends []string, hold, retry time.Duration) bool {
	e.routeMu.Lock()
	defer e.routeMu.Unlock()
	if e.routes.owner[service] != id {
		return false
	}
	if len(backends) == 0 {
		e.router.SetUnavailable(service, domains, hold, retry)
	} else {
		e.router.SetRoute(service, domains, backends...)
	}
	return true
}

// takeRouteUnavailable makes deployment id the owner of service's route, with
// nothing routed until its supervisor has the container confirmed (a
// reconcile): requests wait RecoverHold for it, then get 503.
func (e *Engine) takeRouteUnavailable(service, id string, domains []string) {
	e.routeMu.Lock()
	defer e.routeMu.Unlock()
	e.routes.owner[service] = id
	e.router.SetUnavailable(service, domains, RecoverHold, time.Second)
}

// routeNothing points a service with no ACTIVE deployment at no backend.
func (e *Engine) routeNothing(service string, domains []string) {
	e.routeMu.Lock()
	defer e.routeMu.Unlock()
	delete(e.routes.owner, service)
	e.router.SetRoute(service, domains)
}

// removeRoute forgets service (its domains answer 404) and ends the
// supervision of its deployments, so that nothing routes or starts them again.
func (e *Engine) removeRoute(service string) {
	e.routeMu.Lock()
	delete(e.routes.owner, service)
	e.router.RemoveRoute(service)
	e.routeMu.Unlock()
	for _, id := range e.supervisedOf(service) {
		e.unsupervise(id)
	}
}

// errNotOurs: a container is not the one Clank recorded for a deployment.
var errNotOurs = errors.New("not this deployment's container")

// verify checks, with the Docker engine, that the container of replica r is
// deployment d's (its ID, and Clank's owner, service and deployment labels),
// that it runs, and on which loopback port. The router sends a request to a
// port only after this check: after a Docker restart an old host port may
// belong to another container.
func (e *Engine) verify(ctx context.Context, d store.Deployment, r store.Replica) (Container, error) {
	containerID, label := r.ContainerID, d.ContainerDeployment(r)
	if containerID == "" {
		return Container{}, fmt.Errorf("deployment #%d has no container: %w", d.Number, ErrContainerNotFound)
	}
	c, err := e.rt.Inspect(ctx, containerID)
	if err != nil {
		return c, err
	}
	switch {
	case c.ID != containerID:
		return c, fmt.Errorf("container %s answers as %s: %w", shortID(containerID), shortID(c.ID), errNotOurs)
	case c.Labels[LabelOwner] != e.owner || c.Labels[LabelService] != d.Service || c.Labels[LabelDeployment] != label:
		return c, fmt.Errorf("container %s is labelled for %s/%s (owner %s), not %s/%s: %w", shortID(containerID),
			c.Labels[LabelService], c.Labels[LabelDeployment], c.Labels[LabelOwner], d.Service, label, errNotOurs)
	case !c.Running:
		return c, nil
	case c.HostPort == 0:
		return c, fmt.Errorf("container %s runs with no port published on 127.0.0.1: %w", shortID(containerID), errNotOurs)
	}
	return c, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
