package engine

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/clank-dev/clank/store"
)

// Replicas (docs/architecture.md, "Replicas"): a deployment runs
// store.Deployment.Replicas containers, one per slot (0 .. N-1), each on its
// own loopback port. The router balances across the healthy ones; each has
// its own supervisor. The count is the service's policy (store.Service.Replicas):
// a new deployment of any kind runs at the service's current count, and
// Scale changes the ACTIVE deployment's in place.
//
// The functions here are where a deployment's containers are made, checked
// and removed: startReplicas, waitReplicasHealthy, stopReplicas (with verify
// in routes.go and startAgain in supervise.go).

// LabelReplica is the container label that says which slot of its
// deployment a container is ("0", "1", ...).
const LabelReplica = "dev.clank.replica"

// MaxReplicas bounds a service's replica count: every replica is a
// container and a loopback port on this host.
const MaxReplicas = 64

// ValidateReplicas checks a replica count.
func ValidateReplicas(n int) error {
	if n < 1 || n > MaxReplicas {
		return &invalid{fmt.Sprintf("invalid replica count %d: want 1 to %d", n, MaxReplicas)}
	}
	return nil
}

// containerSpec is the container that runs replica slot of deployment d's
// snapshot; suffix makes its name unique.
func (e *Engine) containerSpec(d store.Deployment, slot int, suffix string) ContainerSpec {
	labels := e.labels(d)
	labels[LabelReplica] = strconv.Itoa(slot)
	return ContainerSpec{
		Name:        fmt.Sprintf("clank-%s-%d-r%d-%s", d.Service, d.Number, slot, suffix),
		Image:       PinnedRef(d.ImageSource, d.Config.Image, d.ImageDigest),
		Env:         d.Config.Env,
		Port:        d.Config.Port,
		CPUs:        d.Config.CPUs,
		MemoryBytes: d.Config.MemoryBytes,
		Labels:      labels,
	}
}

// startReplicas creates and starts d's containers for slots, at once, and
// records each in the store. It returns them in the order of slots (a
// zero Container for one that did not start) with the first error: the
// caller stops what started.
func (e *Engine) startReplicas(ctx context.Context, d store.Deployment, slots []int) ([]Container, error) {
	cs := make([]Container, len(slots))
	errs := make([]error, len(slots))
	var wg sync.WaitGroup
	for i, slot := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := e.rt.Start(ctx, e.containerSpec(d, slot, d.ID[len(d.ID)-6:]))
			if err != nil {
				errs[i] = fmt.Errorf("start container%s: %w", replicaNote(d, slot), err)
				return
			}
			cs[i] = c
			if err := e.store.SetReplica(context.WithoutCancel(ctx), d.ID, store.Replica{Slot: slot, ContainerID: c.ID, HostPort: c.HostPort}); err != nil {
				errs[i] = fmt.Errorf("record container%s: %w", replicaNote(d, slot), err)
			}
		}()
	}
	wg.Wait()
	return cs, errors.Join(errs...)
}

// waitReplicasHealthy probes every container of cs (d's replicas for
// slots) until each passes its health check; the first that cannot ends the
// wait for all, and its error says which replica.
func (e *Engine) waitReplicasHealthy(ctx context.Context, d store.Deployment, slots []int, cs []Container) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.waitHealthy(ctx, d, c.ID, c.HostPort); err != nil {
				once.Do(func() {
					first = fmt.Errorf("%s%w", replicaPrefix(d, slots[i]), err)
					cancel()
				})
			}
		}()
	}
	wg.Wait()
	return first
}

// stopReplicas stops (within grace) and removes the containers ids of d, at once.
func (e *Engine) stopReplicas(ctx context.Context, d store.Deployment, ids []string, grace time.Duration) {
	var wg sync.WaitGroup
	for _, id := range ids {
		if id == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.rt.Stop(ctx, id, grace); err != nil {
				e.log.Warn("remove container", "deployment", d.ID, "container", shortID(id), "err", err)
			}
		}()
	}
	wg.Wait()
}

// drainBackends waits until nothing is in flight on any of backends,
// bounded by the drain timeout: replicas drain together.
func (e *Engine) drainBackends(ctx context.Context, d store.Deployment, backends []string) {
	dctx, cancel := context.WithTimeout(ctx, e.opts.DrainTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, b := range backends {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.router.Drain(dctx, b); err != nil {
				e.log.Info("drain ended by timeout", "deployment", d.ID, "backend", b, "err", err)
			}
		}()
	}
	wg.Wait()
}

// backendsOf is where d's recorded containers answer.
func backendsOf(d store.Deployment) []string {
	var out []string
	for _, r := range d.Containers {
		if b := backendAddr(r.HostPort); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// containerIDs lists d's recorded containers.
func containerIDs(d store.Deployment) []string {
	out := make([]string, 0, len(d.Containers))
	for _, r := range d.Containers {
		out = append(out, r.ContainerID)
	}
	return out
}

// replicaCount is d's replica count (1 for a record that says none).
func replicaCount(d store.Deployment) int { return max(d.Replicas, 1) }

// replicaPrefix begins a message about replica slot of d when d has more
// than one: "replica 2: ".
func replicaPrefix(d store.Deployment, slot int) string {
	if replicaCount(d) == 1 {
		return ""
	}
	return fmt.Sprintf("replica %d: ", slot)
}

// replicaNote is replicaPrefix as a suffix: " of replica 2".
func replicaNote(d store.Deployment, slot int) string {
	if replicaCount(d) == 1 {
		return ""
	}
	return fmt.Sprintf(" of replica %d", slot)
}

// slotsFrom lists the slots from..to-1.
func slotsFrom(from, to int) []int {
	var out []int
	for s := from; s < to; s++ {
		out = append(out, s)
	}
	return out
}

// Scale sets service's replica count to n and runs its ACTIVE deployment
// with n replicas in place, with no new deployment: new replicas start from
// the same snapshot and join the route once healthy and verified; replicas
// beyond n leave the route, drain together and are removed. The change is
// an event of the deployment. It holds the service as a deployment would
// (at most one change in progress). Without an ACTIVE deployment it sets the
// count the next deployment runs with. It returns the ACTIVE deployment
// after the change (zero when there is none).
func (e *Engine) Scale(ctx context.Context, service string, n int, by string) (store.Deployment, error) {
	if err := ValidateReplicas(n); err != nil {
		return store.Deployment{}, err
	}
	claim, err := e.claim(ctx, Request{Service: service})
	if err != nil {
		return store.Deployment{}, err
	}
	defer e.release(service, claim)
	svc, err := e.Service(ctx, service)
	if err != nil {
		return store.Deployment{}, err
	}
	if svc.ActiveDeploymentID == "" {
		if _, err := e.store.Scale(ctx, service, "", n, ""); err != nil {
			return store.Deployment{}, e.storeErr(err, "service "+service)
		}
		e.publish(Event{Type: EventService, Service: service, Message: fmt.Sprintf("scaled to %d replicas (nothing ACTIVE: the next deployment runs them)", n)})
		return store.Deployment{}, nil
	}
	d, err := e.store.GetDeployment(ctx, svc.ActiveDeploymentID)
	if err != nil {
		return store.Deployment{}, err
	}
	from := replicaCount(d)
	if n == from {
		if svc.Replicas != n {
			if _, err := e.store.Scale(ctx, service, "", n, ""); err != nil {
				return d, err
			}
			e.publish(Event{Type: EventService, Service: service, Message: fmt.Sprintf("scale set to %d replicas", n)})
		}
		return d, nil
	}
	e.supMu.Lock()
	s := e.sup[d.ID]
	e.supMu.Unlock()
	if s == nil {
		return d, fmt.Errorf("%w: deployment #%d of %s is not supervised yet", ErrUnavailable, d.Number, service)
	}
	unit := "replicas"
	if n == 1 {
		unit = "replica"
	}
	msg := fmt.Sprintf("scaled from %d to %d %s by %s", from, n, unit, by)
	switch {
	case e.swarm != nil:
		err = e.scaleSwarm(ctx, s, d, n, msg)
	case n > from:
		err = e.scaleUp(ctx, s, d, from, n, msg)
	default:
		err = e.scaleDown(ctx, s, d, n, msg)
	}
	if err != nil {
		return d, err
	}
	nd, err := e.store.GetDeployment(context.WithoutCancel(ctx), d.ID)
	if err != nil {
		return d, err
	}
	e.log.Info("scaled", "service", service, "deployment", d.ID, "from", from, "to", n, "by", by)
	e.publishDeployment(nd, fmt.Sprintf("#%d %s", nd.Number, msg))
	return nd, nil
}

// scaleUp starts d's replicas from..n-1, and once each passes its health
// check and is verified, records the count and puts them in the route. A
// replica that does not pass leaves d as it was.
func (e *Engine) scaleUp(ctx context.Context, s *supervised, d store.Deployment, from, n int, msg string) error {
	bg := context.WithoutCancel(ctx)
	slots := slotsFrom(from, n)
	undo := func(cs []Container, err error) error {
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		e.stopReplicas(bg, d, ids, 0)
		for _, slot := range slots {
			if err := e.store.RemoveReplica(bg, d.ID, slot); err != nil {
				e.log.Warn("forget a replica that did not start", "deployment", d.ID, "err", err)
			}
		}
		return refuse(err, fmt.Sprintf("scale %s to %d: %s; it still runs %d", d.Service, n, oneLine(err.Error()), from))
	}
	if err := e.ensureImage(ctx, &d); err != nil {
		return undo(nil, err)
	}
	cs, err := e.startReplicas(ctx, d, slots)
	if err == nil {
		err = e.waitReplicasHealthy(ctx, d, slots, cs)
	}
	for i := 0; err == nil && i < len(cs); i++ {
		rec := store.Replica{Slot: slots[i], ContainerID: cs[i].ID, HostPort: cs[i].HostPort}
		if vc, verr := e.verify(ctx, d, rec); verr != nil || !vc.Running || vc.HostPort != cs[i].HostPort {
			err = fmt.Errorf("container check: %s%s", replicaPrefix(store.Deployment{Replicas: n}, slots[i]), describeCheck(vc, verr))
		}
	}
	if err != nil {
		return undo(cs, err)
	}
	nd, err := e.store.Scale(bg, d.Service, d.ID, n, msg)
	if err != nil {
		return undo(cs, err)
	}
	e.supMu.Lock()
	s.mu.Lock()
	s.d.Replicas = nd.Replicas
	s.d.Containers = nd.Containers
	s.mu.Unlock()
	for i, slot := range slots {
		e.superviseReplica(s.ctx, s, slot, cs[i])
	}
	e.supMu.Unlock()
	e.routeReplicas(s, false)
	return nil
}

// scaleDown records the count n, takes d's replicas n.. out of the route,
// lets them finish their requests together, and removes them.
func (e *Engine) scaleDown(ctx context.Context, s *supervised, d store.Deployment, n int, msg string) error {
	bg := context.WithoutCancel(ctx)
	nd, err := e.store.Scale(bg, d.Service, d.ID, n, msg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.d.Replicas = nd.Replicas
	var slots []int
	for _, r := range s.replicas {
		if r.slot >= n {
			slots = append(slots, r.slot)
		}
	}
	s.mu.Unlock()
	var gone []store.Replica
	for _, slot := range slots {
		if r, ok := e.unsuperviseReplica(d.ID, slot); ok {
			gone = append(gone, r)
		}
	}
	e.routeReplicas(s, false)
	var backends, ids []string
	for _, r := range gone {
		if b := backendAddr(r.HostPort); b != "" {
			backends = append(backends, b)
		}
		ids = append(ids, r.ContainerID)
	}
	e.drainBackends(ctx, d, backends)
	e.stopReplicas(bg, d, ids, e.opts.StopGrace)
	for _, r := range gone {
		if err := e.store.RemoveReplica(bg, d.ID, r.Slot); err != nil {
			e.log.Warn("forget a replica scaled away", "deployment", d.ID, "err", err)
		}
	}
	e.publishRuntime(s, fmt.Sprintf("%d %s removed", len(gone), containerWord(len(gone))))
	return nil
}
