package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/clank-dev/clank/store"
)

// interruptedReason is the failure reason of a deployment caught mid-flight
// by a crash or restart.
const interruptedReason = "interrupted: the daemon stopped during the deployment"

// reconcile brings the runtime and the router in line with the store after a
// (re)start: deployments caught mid-flight are FAILED and their containers
// removed, drains are finished, every ACTIVE deployment is put under
// supervision (which routes its container once Docker confirmed it is the
// deployment's, and starts it again if it exited or went), warm standbys are
// kept or removed, and containers of this instance that nothing owns are
// removed.
func (e *Engine) reconcile(ctx context.Context) error {
	pingErr := e.Ping(ctx)
	dockerOK := pingErr == nil

	stuck, err := e.store.ListDeploymentsByStatus(ctx, store.StatusDeploying, store.StatusHealthChecking)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, d := range stuck {
		if dockerOK {
			e.removeContainers(ctx, d, 0)
		}
		fd, err := e.store.Fail(ctx, d.ID, interruptedReason)
		if err != nil {
			return fmt.Errorf("reconcile %s: %w", d.ID, err)
		}
		e.log.Warn("deployment interrupted by a restart", "service", d.Service, "deployment", d.ID)
		e.publishDeployment(fd, interruptedReason)
	}

	draining, err := e.store.ListDeploymentsByStatus(ctx, store.StatusDraining)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, d := range draining {
		if dockerOK {
			e.removeContainers(ctx, d, 0)
		}
		if _, err := e.store.SetStatus(ctx, d.ID, store.StatusInactive, "drain ended by a restart; container removed"); err != nil {
			return fmt.Errorf("reconcile %s: %w", d.ID, err)
		}
	}

	services, err := e.store.ListServices(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, svc := range services {
		e.certs.Redirect(svc.Name, svc.HTTPSRedirect)
		if svc.ActiveDeploymentID == "" {
			e.routeNothing(svc.Name, svc.Config.Domains) // 503: nothing deployed yet
			continue
		}
		d, err := e.store.GetDeployment(ctx, svc.ActiveDeploymentID)
		if err != nil {
			return fmt.Errorf("reconcile %s: %w", svc.Name, err)
		}
		e.certs.Want(d.Service, d.Config.Domains)
		// Nothing is routed before Docker confirms the container: until then
		// requests wait a little, then get 503.
		e.takeRouteUnavailable(d.Service, d.ID, d.Config.Domains)
		if dockerOK {
			d = e.dropExtraReplicas(ctx, d)
		}
		e.supervise(d, nil, resumedWatch(d))
	}
	if dockerOK {
		e.reconcileStandbys(ctx)
		e.removeOrphans(ctx)
	}
	return pingErr
}

// dropExtraReplicas removes the containers of d's slots beyond its replica
// count (a scale down that a restart interrupted) and returns d as it is then.
func (e *Engine) dropExtraReplicas(ctx context.Context, d store.Deployment) store.Deployment {
	changed := false
	for _, r := range d.Containers {
		if r.Slot < replicaCount(d) {
			continue
		}
		e.log.Info("reconcile: removing a replica beyond the deployment's count", "deployment", d.ID, "replica", r.Slot)
		if err := e.rt.Stop(ctx, r.ContainerID, 0); err != nil {
			e.log.Warn("remove replica", "deployment", d.ID, "err", err)
			continue
		}
		if err := e.store.RemoveReplica(ctx, d.ID, r.Slot); err != nil {
			e.log.Warn("remove replica", "deployment", d.ID, "err", err)
		}
		changed = true
	}
	if changed {
		if fresh, err := e.store.GetDeployment(ctx, d.ID); err == nil {
			return fresh
		}
	}
	return d
}

// reconcileLive runs each time the Docker event stream opens (the first time
// and after every reconnect): every supervisor looks at its container again
// (and routes it only once Docker confirms it), warm standbys are looked at,
// and containers of this instance that nothing owns are removed.
func (e *Engine) reconcileLive(ctx context.Context) {
	services, err := e.store.ListServices(ctx)
	if err != nil {
		e.log.Warn("reconcile", "err", err)
		return
	}
	for _, svc := range services {
		if svc.ActiveDeploymentID == "" {
			continue
		}
		if d, err := e.store.GetDeployment(ctx, svc.ActiveDeploymentID); err == nil {
			e.supervise(d, nil, resumedWatch(d)) // already supervised: look again
		}
	}
	e.pokeStandbys()
	e.removeOrphans(ctx)
}

// resumedWatch is the watch of an ACTIVE deployment found at a reconcile:
// the rest of its window, if it has not tripped.
func resumedWatch(d store.Deployment) *watch {
	if d.WatchUntil == nil || d.WatchTripped != "" {
		return nil
	}
	return newWatch(d.WatchPolicy, *d.WatchUntil)
}

// removeOrphans removes the containers of this instance that no deployment
// owns: not one in progress, ACTIVE or draining (by label, so that one still
// starting counts), nor the recorded container of one of those or of a warm
// standby (an adopted container carries another deployment's label). The
// containers are listed before the deployments are read, so that a container
// made meanwhile belongs to a deployment this reads.
func (e *Engine) removeOrphans(ctx context.Context) {
	cs, err := e.rt.List(ctx, map[string]string{LabelOwner: e.owner})
	if err != nil {
		e.log.Warn("reconcile: list containers", "err", err)
		return
	}
	swarmServices, err := e.ownSwarmServices(ctx)
	if err != nil {
		e.log.Warn("reconcile: list Swarm services", "err", err)
		return
	}
	live, err := e.store.ListDeploymentsByStatus(ctx, store.StatusDeploying, store.StatusHealthChecking, store.StatusActive, store.StatusDraining)
	if err != nil {
		e.log.Warn("reconcile", "err", err)
		return
	}
	warm, err := e.store.ListStandbys(ctx)
	if err != nil {
		e.log.Warn("reconcile", "err", err)
		return
	}
	byLabel, byID := map[string]bool{}, map[string]bool{}
	for _, d := range live {
		byLabel[d.ID] = true
		for _, id := range containerIDs(d) {
			byID[id] = true
		}
	}
	for _, d := range warm {
		for _, id := range containerIDs(d) {
			byID[id] = true
		}
	}
	e.removeSwarmOrphans(ctx, swarmServices, byLabel)
	for _, c := range cs {
		if byLabel[c.Labels[LabelDeployment]] || byID[c.ID] {
			continue
		}
		e.log.Info("removing orphan container", "container", c.Name)
		if err := e.rt.Stop(ctx, c.ID, 0); err != nil {
			e.log.Warn("remove orphan", "container", c.Name, "err", err)
		}
	}
}

// removeContainers stops (within grace) and removes d's recorded containers
// and every container of this instance labelled with d.
func (e *Engine) removeContainers(ctx context.Context, d store.Deployment, grace time.Duration) {
	e.removeSwarmServices(ctx, map[string]string{LabelDeployment: d.ID})
	e.stopReplicas(ctx, d, containerIDs(d), grace)
	cs, err := e.rt.List(ctx, map[string]string{LabelOwner: e.owner, LabelDeployment: d.ID})
	if err != nil {
		e.log.Warn("list containers", "deployment", d.ID, "err", err)
		return
	}
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	e.stopReplicas(ctx, d, ids, 0)
}

// StopAll ends supervision and stops and removes every container of this
// instance (the demo does this when it ends; the next Start restores each
// ACTIVE deployment). Call Close after it.
func (e *Engine) StopAll(ctx context.Context) error {
	for _, id := range e.supervisedIDs() {
		e.unsupervise(id)
	}
	cs, err := e.rt.List(ctx, map[string]string{LabelOwner: e.owner})
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := e.rt.Stop(ctx, c.ID, e.opts.StopGrace); err != nil {
			return err
		}
	}
	return nil
}
