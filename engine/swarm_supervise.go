package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/clank-dev/clank/store"
)

// Supervision on Swarm (docs/scale-out.md): Swarm restarts and replaces a
// deployment's tasks itself (its restart policy, a lost node), so Clank
// starts nothing; it follows. Each look reads the task list of the
// deployment's Swarm service, drops the tasks that ended from the route at
// once, probes every running task at its node's address, and routes those
// that pass (or those that run, when none passes, as on one host). A look
// happens at each health interval, and at once when Swarm or a node's Docker
// engine reports something about the service (service, node and container
// events). A replica of a supervised deployment is a task here: its
// containerID is the task's ID.

// LabelSwarmService names the Swarm service a task's container belongs to:
// Docker puts it on the containers of a Swarm service's tasks.
const LabelSwarmService = "com.docker.swarm.service.name"

// Event types the Swarm runtime reports besides the container and image ones.
const (
	EventTypeService = "service"
	EventTypeNode    = "node"
)

// swarmState is what the supervision of a deployment on Swarm keeps besides
// its replicas.
type swarmState struct {
	wake chan struct{} // something happened to the Swarm service: look now
	lost int           // tasks that ended and whose successor has not run yet
}

// superviseSwarm puts ACTIVE deployment d under supervision on Swarm; tasks
// are the ones its cutover probed (nil at a reconcile: the first look reads
// them). A deployment already supervised is only asked to look again.
func (e *Engine) superviseSwarm(d store.Deployment, tasks []Task, w *watch) {
	e.supMu.Lock()
	defer e.supMu.Unlock()
	if s := e.sup[d.ID]; s != nil {
		s.kick()
		return
	}
	ctx, cancel := context.WithCancel(e.ctx)
	s := &supervised{cancel: cancel, d: d, watch: w, swarm: &swarmState{wake: make(chan struct{}, 1)}}
	now := time.Now()
	for _, t := range tasks {
		s.replicas = append(s.replicas, &replica{s: s, slot: taskSlot(t), containerID: t.ID, host: t.Addr, hostPort: t.Port, node: t.Node,
			state: RuntimeHealthy, verified: true, since: now, healthySince: now})
	}
	e.sup[d.ID] = s
	if !e.spawn(&s.wg, func() { e.runSwarmSupervisor(ctx, s, tasks == nil) }) {
		cancel()
		delete(e.sup, d.ID)
		return
	}
	if w != nil {
		e.spawn(&s.wg, func() { e.runWatch(ctx, s) })
	}
}

// taskSlot is a task's replica slot (0 .. N-1; Swarm numbers from 1).
func taskSlot(t Task) int { return max(t.Slot-1, 0) }

// kick asks the supervision of a deployment on Swarm to look now.
func (s *supervised) kick() {
	if s.swarm == nil {
		return
	}
	select {
	case s.swarm.wake <- struct{}{}:
	default: // one look is pending already
	}
}

// kickSwarm asks the supervision of the deployment that runs as Swarm
// service name (every one on Swarm when name is "") to look now.
func (e *Engine) kickSwarm(name string) {
	e.supMu.Lock()
	defer e.supMu.Unlock()
	for _, s := range e.sup {
		if s.swarm == nil {
			continue
		}
		s.mu.Lock()
		match := name == "" || SwarmServiceName(s.d) == name
		s.mu.Unlock()
		if match {
			s.kick()
		}
	}
}

// runSwarmSupervisor looks at the deployment's tasks at each health interval
// and whenever it is kicked; initial: at once (a reconcile).
func (e *Engine) runSwarmSupervisor(ctx context.Context, s *supervised, initial bool) {
	interval := s.d.Config.Health.Interval
	if interval <= 0 {
		interval = DefaultHealthInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	if initial {
		e.lookSwarm(ctx, s, true)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.swarm.wake:
			e.lookSwarm(ctx, s, false)
		case <-tick.C:
			e.lookSwarm(ctx, s, false)
		}
	}
}

// lookSwarm brings the supervision in line with the deployment's tasks as
// Swarm reports them now, probes the running ones and routes those that pass.
func (e *Engine) lookSwarm(ctx context.Context, s *supervised, initial bool) {
	bg := context.WithoutCancel(ctx)
	s.mu.Lock()
	d := s.d
	s.mu.Unlock()
	lost := e.docker.lost.Load()
	svc, err := e.swarmService(ctx, d)
	switch {
	case ctx.Err() != nil:
		return
	case errors.Is(err, ErrSwarmServiceNotFound):
		e.restoreSwarm(ctx, s)
		return
	case err != nil: // the manager does not answer, or the name is someone else's
		e.log.Warn("Swarm service of an ACTIVE deployment", "deployment", d.ID, "err", err)
		e.unverify(s)
		return
	}

	all := map[string]Task{}
	var live []Task
	for _, t := range svc.Tasks {
		all[t.ID] = t
		if t.DesiredState == TaskRunning {
			live = append(live, t)
		}
	}
	now := time.Now()
	var ended []Task
	started := 0
	s.mu.Lock()
	if e.docker.lost.Load() != lost { // dockerLost unverifies them; the reconnect looks again
		s.mu.Unlock()
		return
	}
	had := map[string]*replica{}
	for _, r := range s.replicas {
		had[r.containerID] = r
	}
	next := make([]*replica, 0, len(live))
	for _, t := range live {
		r := had[t.ID]
		delete(had, t.ID)
		if r == nil {
			r = &replica{s: s, slot: taskSlot(t), containerID: t.ID, state: RuntimeRestarting, reason: "task " + t.State, since: now}
			if !initial {
				started++
			}
		}
		r.host, r.hostPort, r.node = t.Addr, t.Port, t.Node
		r.verified = t.serving()
		if !r.verified && r.state != RuntimeRestarting {
			r.state, r.reason, r.since = RuntimeRestarting, "task "+t.State, now
		}
		next = append(next, r)
	}
	for id, r := range had {
		t, ok := all[id]
		if !ok {
			t = Task{ID: id, State: "removed", Node: r.node}
		}
		if !t.stopped() {
			ended = append(ended, t) // a crash, or its node lost
		}
	}
	s.replicas = next
	s.swarm.lost += len(ended)
	restarted := min(started, s.swarm.lost)
	s.swarm.lost -= restarted
	s.mu.Unlock()

	if len(ended) > 0 {
		// Out of the route at once; the probes below bring the rest back.
		e.routeReplicas(s, true)
	}
	for _, t := range ended {
		reason := fmt.Sprintf("task %d on %s %s", t.Slot, t.Node, t.ended())
		msg := reason + "; Swarm replaces it"
		if nd, err := e.store.RecordExit(bg, d.ID, t.ended(), msg); err != nil {
			e.log.Error("record task exit", "deployment", d.ID, "err", err)
		} else {
			s.mu.Lock()
			s.d = nd
			s.mu.Unlock()
		}
		e.log.Warn("ACTIVE task ended", "service", d.Service, "deployment", d.ID, "task", t.ID, "reason", reason)
		e.publishRuntime(s, msg)
		e.watchCrash(s, reason)
	}
	for range restarted {
		if nd, err := e.store.RecordRestart(bg, d.ID, "Swarm started a task in place of one that ended"); err == nil {
			s.mu.Lock()
			s.d = nd
			s.mu.Unlock()
		}
	}
	e.probeTasks(ctx, s)
}

// probeTasks probes every running task of s once, in parallel, records the
// answers and routes the tasks that may serve.
func (e *Engine) probeTasks(ctx context.Context, s *supervised) {
	s.mu.Lock()
	cfg := s.d.Config.Health
	var todo []*replica
	for _, r := range s.replicas {
		if r.verified {
			todo = append(todo, r)
		}
	}
	s.mu.Unlock()
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for i, r := range todo {
		s.mu.Lock()
		url := fmt.Sprintf("http://%s%s", r.backend(), cfg.Path)
		s.mu.Unlock()
		wg.Go(func() { errs[i] = e.probeSupervised(ctx, url, cfg.Timeout) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	now := time.Now()
	var news []string
	worstFailures, lastReason := 0, ""
	s.mu.Lock()
	for i, r := range todo {
		if err := errs[i]; err == nil {
			r.failures, r.reason = 0, ""
			if r.state != RuntimeHealthy {
				r.state, r.since, r.healthySince = RuntimeHealthy, now, now
				news = append(news, fmt.Sprintf("task on %s healthy", r.node))
			}
		} else {
			r.failures++
			r.reason = oneLine(err.Error())
			if r.state != RuntimeUnhealthy {
				r.state, r.since = RuntimeUnhealthy, now
				news = append(news, fmt.Sprintf("task on %s unhealthy: %s", r.node, r.reason))
			}
			if r.failures > worstFailures {
				worstFailures, lastReason = r.failures, r.reason
			}
		}
	}
	s.mu.Unlock()
	e.routeReplicas(s, false)
	for _, msg := range news {
		e.publishRuntime(s, msg)
	}
	if worstFailures > 0 {
		e.watchFailures(s, worstFailures, lastReason)
	}
}

// restoreSwarm creates the deployment's Swarm service again from its
// snapshot when it is gone (removed behind Clank's back, or a swarm made
// anew): the same deployment, no new record.
func (e *Engine) restoreSwarm(ctx context.Context, s *supervised) {
	bg := context.WithoutCancel(ctx)
	s.mu.Lock()
	d := s.d
	s.replicas = nil
	s.mu.Unlock()
	e.routeReplicas(s, true)
	msg := fmt.Sprintf("Swarm service %s is gone: creating it again from the same snapshot", SwarmServiceName(d))
	if nd, err := e.store.RecordRestart(bg, d.ID, msg); err == nil {
		d = nd
		s.mu.Lock()
		s.d = nd
		s.mu.Unlock()
	}
	e.log.Warn("restoring the Swarm service of an ACTIVE deployment", "service", d.Service, "deployment", d.ID)
	e.publishRuntime(s, msg)
	if err := e.createSwarmService(ctx, d, replicaCount(d)); err != nil && ctx.Err() == nil {
		e.log.Warn("create Swarm service again", "deployment", d.ID, "err", err)
		e.publishRuntime(s, "create Swarm service again: "+oneLine(err.Error()))
	}
}

// scaleSwarm records the count n and has Swarm run n tasks of d's Swarm
// service; the supervision routes a new task once it passes, and drops a
// task Swarm stops from the route at once.
func (e *Engine) scaleSwarm(ctx context.Context, s *supervised, d store.Deployment, n int, msg string) error {
	if err := e.swarm.ScaleService(ctx, SwarmServiceName(d), n); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	nd, err := e.store.Scale(context.WithoutCancel(ctx), d.Service, d.ID, n, msg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.d.Replicas = nd.Replicas
	s.mu.Unlock()
	s.kick()
	return nil
}
