package engine

import (
	"context"
	"fmt"

	"github.com/clank-dev/clank/store"
)

// interruptedReason is the failure reason of a deployment caught mid-flight
// by a crash or restart.
const interruptedReason = "interrupted: the daemon stopped during the deployment"

// reconcile brings the runtime and the router in line with the store after a
// (re)start: deployments caught mid-flight are FAILED and their containers
// removed, drains are finished, every ACTIVE deployment is routed (its
// container started again if it is gone), and containers of this instance
// that no deployment owns are removed.
func (e *Engine) reconcile(ctx context.Context) error {
	pingErr := e.Ping(ctx)
	dockerOK := pingErr == nil

	stuck, err := e.store.ListDeploymentsByStatus(ctx, store.StatusDeploying, store.StatusHealthChecking)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	for _, d := range stuck {
		if dockerOK {
			e.removeContainers(ctx, d)
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
			e.removeContainers(ctx, d)
		}
		if _, err := e.store.SetStatus(ctx, d.ID, store.StatusInactive, "drain ended by a restart; container removed"); err != nil {
			return fmt.Errorf("reconcile %s: %w", d.ID, err)
		}
	}

	services, err := e.store.ListServices(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	keep := map[string]bool{}
	for _, svc := range services {
		e.certs.Redirect(svc.Name, svc.HTTPSRedirect)
		if svc.ActiveDeploymentID == "" {
			e.router.SetRoute(svc.Name, svc.Config.Domains, "") // 503: nothing deployed yet
			continue
		}
		d, err := e.store.GetDeployment(ctx, svc.ActiveDeploymentID)
		if err != nil {
			return fmt.Errorf("reconcile %s: %w", svc.Name, err)
		}
		keep[d.ID] = true
		e.certs.Want(d.Service, d.Config.Domains)
		if !dockerOK {
			e.router.SetRoute(d.Service, d.Config.Domains, backendAddr(d.HostPort))
			continue
		}
		cs, err := e.rt.List(ctx, map[string]string{LabelOwner: e.owner, LabelDeployment: d.ID})
		if err == nil && len(cs) > 0 && cs[0].Running && cs[0].HostPort != 0 {
			e.router.SetRoute(d.Service, d.Config.Domains, backendAddr(cs[0].HostPort))
			continue
		}
		// The container is gone (the host rebooted, someone removed it): the
		// service answers 503 until the same snapshot runs again. The restore
		// holds the service like a deployment in progress, so that no deploy
		// or rollback can race it.
		e.router.SetRoute(d.Service, d.Config.Domains, "")
		e.mu.Lock()
		e.inflight[d.Service] = d.ID
		e.mu.Unlock()
		e.go_(func(ctx context.Context) {
			defer e.release(d.Service, d.ID)
			e.restore(ctx, d)
		})
	}

	if dockerOK {
		cs, err := e.rt.List(ctx, map[string]string{LabelOwner: e.owner})
		if err != nil {
			return fmt.Errorf("reconcile: list containers: %w", err)
		}
		for _, c := range cs {
			if !keep[c.Labels[LabelDeployment]] {
				e.log.Info("removing orphan container", "container", c.Name)
				if err := e.rt.Stop(ctx, c.ID, 0); err != nil {
					e.log.Warn("remove orphan", "container", c.Name, "err", err)
				}
			}
		}
	}
	return pingErr
}

// restore starts the ACTIVE deployment d again from its snapshot and routes
// it once healthy. The caller holds the service (e.inflight).
func (e *Engine) restore(ctx context.Context, d store.Deployment) {
	e.removeContainers(ctx, d)
	c, err := e.rt.Start(ctx, e.containerSpec(d, newID("")[:6]))
	if err != nil {
		e.log.Error("restore active deployment", "service", d.Service, "deployment", d.ID, "err", err)
		return
	}
	bg := context.WithoutCancel(ctx)
	if err := e.waitHealthy(ctx, d, c.HostPort); err != nil {
		e.log.Error("restored deployment is not healthy: the service answers 503", "service", d.Service, "deployment", d.ID, "err", err)
		e.rt.Stop(bg, c.ID, 0)
		return
	}
	if svc, err := e.store.GetService(bg, d.Service); err != nil || svc.ActiveDeploymentID != d.ID {
		e.rt.Stop(bg, c.ID, 0) // replaced meanwhile (cannot happen while we hold the service, but be sure)
		return
	}
	if err := e.store.SetContainer(bg, d.ID, c.ID, c.HostPort); err != nil {
		e.log.Error("record restored container", "deployment", d.ID, "err", err)
		e.rt.Stop(bg, c.ID, 0)
		return
	}
	e.router.SetRoute(d.Service, d.Config.Domains, backendAddr(c.HostPort))
	e.log.Info("active deployment restored", "service", d.Service, "deployment", d.ID)
}

// removeContainers removes every container of this instance labelled with d.
func (e *Engine) removeContainers(ctx context.Context, d store.Deployment) {
	cs, err := e.rt.List(ctx, map[string]string{LabelOwner: e.owner, LabelDeployment: d.ID})
	if err != nil {
		e.log.Warn("list containers", "deployment", d.ID, "err", err)
		return
	}
	for _, c := range cs {
		if err := e.rt.Stop(ctx, c.ID, 0); err != nil {
			e.log.Warn("remove container", "container", c.Name, "err", err)
		}
	}
}

// StopAll stops and removes every container of this instance (the demo does
// this when it ends; the next Start restores each ACTIVE deployment).
func (e *Engine) StopAll(ctx context.Context) error {
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
