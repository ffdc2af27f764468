package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clank-dev/clank/store"
)

// Supervision (docs/architecture.md, "After the cutover"): every ACTIVE deployment has a
// supervisor for each of its containers (its replicas, one per slot). It
// follows the Docker events of the container, probes its health check at the
// configured interval, starts a crashed container again from the same
// snapshot with backoff, and routes the container only once the Docker
// engine has confirmed that it is this deployment's (see verify). A
// deployment's runtime state is its worst replica's.

// Runtime states of an ACTIVE deployment (runtime in JSON).
const (
	RuntimeHealthy    = "healthy"    // the health check passes
	RuntimeUnhealthy  = "unhealthy"  // the container runs, its health check fails
	RuntimeCrashed    = "crashed"    // the container exited; it will be started again
	RuntimeRestarting = "restarting" // started again, not healthy yet
)

// Restart backoff: a crashed container is started again after
// RestartBackoffMin, then twice as long after each crash up to
// RestartBackoffMax; once it has stayed healthy for BackoffReset the next
// crash waits RestartBackoffMin again.
const (
	RestartBackoffMin = time.Second
	RestartBackoffMax = time.Minute
	BackoffReset      = 2 * time.Minute
)

// severity orders runtime states from best to worst.
var severity = map[string]int{RuntimeHealthy: 0, RuntimeUnhealthy: 1, RuntimeRestarting: 2, RuntimeCrashed: 3}

// RuntimeState is what an ACTIVE deployment's containers are doing now.
type RuntimeState struct {
	State    string // the worst replica's
	Reason   string // unhealthy: the last answer; crashed: how it ended; restarting: which start
	Since    time.Time
	Restarts int    // crashed containers started again while ACTIVE
	LastExit string // "exit 137 (OOM killed)", "" if it never exited
	Replicas []ReplicaState
}

// Healthy is how many replicas pass their health check now.
func (rs *RuntimeState) Healthy() int {
	n := 0
	for _, r := range rs.Replicas {
		if r.State == RuntimeHealthy {
			n++
		}
	}
	return n
}

// ReplicaState is one container of an ACTIVE deployment.
type ReplicaState struct {
	Slot        int
	ContainerID string // on Swarm: the task's ID
	Node        string // on Swarm: the node it runs on
	Host        string // where HostPort is published ("" for 127.0.0.1)
	HostPort    int
	State       string
	Reason      string
	Since       time.Time
}

// supervised is one ACTIVE deployment under supervision.
type supervised struct {
	ctx    context.Context // ends when it is unsupervised; each replica's derives from it
	cancel context.CancelFunc
	wg     sync.WaitGroup // its goroutines: Engine.unsupervise waits for them

	mu       sync.Mutex
	d        store.Deployment // its record as last written
	replicas []*replica
	watch    *watch      // nil when it is not (or no longer) watched
	swarm    *swarmState // on Swarm (swarm_supervise.go); nil on one host
}

// replica is one container of a supervised deployment. Its goroutine owns it;
// the fields under s.mu are read by Runtime.
type replica struct {
	s    *supervised
	slot int
	wake chan struct{} // a Docker event about its container: look at it now
	// stop ends its supervisor alone (a scale down); done closes when it ended.
	stop context.CancelFunc
	done chan struct{}
	// prober is its probe's kept connection; its goroutine's alone.
	prober *keptProbe

	// Guarded by s.mu.
	containerID  string // on Swarm: the task's ID
	label        string // the dev.clank.deployment label of its container ("" for the deployment's own)
	host         string // where its port is published: "" is 127.0.0.1 (on Swarm: its node's address)
	hostPort     int
	node         string // on Swarm: its node's hostname
	state        string
	reason       string
	since        time.Time
	verified     bool // the Docker engine confirmed the container since the last reconnect
	failures     int  // consecutive failed probes
	crashes      int  // crashes since it last stayed healthy for BackoffReset
	healthySince time.Time
	restartAt    time.Time // crashed: when it starts again
	oom          bool      // Docker reported an OOM kill in the container since it last started
	// unrecorded is a crash marked from a Docker event that the replica's
	// goroutine has not taken yet (nil: none); recorded is closed once the
	// store write of the last one taken is done (nil: none taken).
	unrecorded *crashNote
	recorded   chan struct{}
}

// crashNote is a crash to write to the store: the container's exit (empty
// when it is gone) and the event's message.
type crashNote struct {
	lastExit, msg string
}

// supervise puts ACTIVE deployment d under supervision, a supervisor per
// replica slot. cs are its containers by slot, just cut over (healthy and
// verified by the deployment itself); nil at a reconcile, when each
// supervisor looks at the recorded container first (and starts one for a
// slot that has none). Without a container known to be healthy, the route
// is left to the first check. A deployment already supervised is only asked
// to look again.
func (e *Engine) supervise(d store.Deployment, cs []Container, w *watch) {
	if e.swarm != nil {
		e.superviseSwarm(d, nil, w)
		return
	}
	e.supMu.Lock()
	defer e.supMu.Unlock()
	if s := e.sup[d.ID]; s != nil {
		for _, r := range s.replicas {
			r.kick()
		}
		return
	}
	ctx, cancel := context.WithCancel(e.ctx)
	s := &supervised{ctx: ctx, cancel: cancel, d: d, watch: w}
	e.sup[d.ID] = s
	for slot := range replicaCount(d) {
		var c Container
		if slot < len(cs) {
			c = cs[slot]
		}
		if !e.superviseReplica(ctx, s, slot, c) {
			cancel()
			delete(e.sup, d.ID)
			return
		}
	}
	if w != nil {
		e.spawn(&s.wg, func() { e.runWatch(ctx, s) })
	}
}

// superviseReplica adds replica slot to s and starts its supervisor: c is
// its container when just started and healthy (zero: look at the recorded
// one first). e.supMu is held.
func (e *Engine) superviseReplica(ctx context.Context, s *supervised, slot int, c Container) bool {
	rctx, stop := context.WithCancel(ctx)
	r := &replica{s: s, slot: slot, wake: make(chan struct{}, 1), stop: stop, done: make(chan struct{}), since: time.Now()}
	s.mu.Lock()
	if rec, ok := s.d.Replica(slot); ok {
		r.containerID, r.hostPort, r.label = rec.ContainerID, rec.HostPort, rec.Label
	}
	if c.ID != "" {
		r.containerID, r.hostPort, r.label, r.state, r.verified, r.healthySince = c.ID, c.HostPort, labelOf(c), RuntimeHealthy, true, time.Now()
	}
	s.replicas = append(s.replicas, r)
	s.mu.Unlock()
	if r.containerID != "" {
		e.byContainer[r.containerID] = r
	}
	return e.spawn(&s.wg, func() {
		defer close(r.done)
		e.runReplica(rctx, r, c.ID == "")
	})
}

// unsuperviseReplica ends replica slot's supervisor in deployment id (a
// scale down) and waits for it; it returns the replica's container, which
// keeps running, and whether it was supervised.
func (e *Engine) unsuperviseReplica(id string, slot int) (store.Replica, bool) {
	e.supMu.Lock()
	s := e.sup[id]
	var r *replica
	if s != nil {
		s.mu.Lock()
		for i, x := range s.replicas {
			if x.slot == slot {
				r = x
				s.replicas = slices.Delete(s.replicas, i, i+1)
				break
			}
		}
		s.mu.Unlock()
	}
	if r == nil {
		e.supMu.Unlock()
		return store.Replica{}, false
	}
	r.stop()
	e.supMu.Unlock()
	<-r.done
	e.supMu.Lock()
	s.mu.Lock()
	out := store.Replica{Slot: slot, ContainerID: r.containerID, HostPort: r.hostPort, Label: r.label}
	s.mu.Unlock()
	delete(e.byContainer, out.ContainerID)
	e.supMu.Unlock()
	return out, true
}

// unsupervise ends the supervision of deployment id and waits for it: it no
// longer starts, routes or probes anything. Its containers keep running.
func (e *Engine) unsupervise(id string) {
	e.supMu.Lock()
	s := e.sup[id]
	delete(e.sup, id)
	if s != nil {
		for _, r := range s.replicas {
			s.mu.Lock()
			delete(e.byContainer, r.containerID)
			s.mu.Unlock()
		}
	}
	e.supMu.Unlock()
	if s != nil {
		s.cancel()
		s.wg.Wait()
	}
}

// kickSupervised asks the supervisors of deployment id to look at their
// containers now.
func (e *Engine) kickSupervised(id string) {
	e.supMu.Lock()
	defer e.supMu.Unlock()
	if s := e.sup[id]; s != nil {
		s.kick()
		for _, r := range s.replicas {
			r.kick()
		}
	}
}

// supervisedOf lists the deployments of service under supervision.
func (e *Engine) supervisedOf(service string) []string {
	e.supMu.Lock()
	defer e.supMu.Unlock()
	var ids []string
	for id, s := range e.sup {
		s.mu.Lock()
		if s.d.Service == service {
			ids = append(ids, id)
		}
		s.mu.Unlock()
	}
	return ids
}

// supervisedIDs lists the deployments under supervision.
func (e *Engine) supervisedIDs() []string {
	e.supMu.Lock()
	defer e.supMu.Unlock()
	ids := make([]string, 0, len(e.sup))
	for id := range e.sup {
		ids = append(ids, id)
	}
	return ids
}

// Runtime is what ACTIVE deployment id's containers are doing now; nil when
// it is not ACTIVE (or not supervised yet).
func (e *Engine) Runtime(id string) *RuntimeState {
	e.supMu.Lock()
	s := e.sup[id]
	e.supMu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stateLocked()
}

func (s *supervised) stateLocked() *RuntimeState {
	out := &RuntimeState{Restarts: s.d.Restarts, LastExit: s.d.LastExit}
	worst := -1
	for _, r := range s.replicas {
		state := r.state
		if state == "" {
			state = RuntimeRestarting // not looked at yet (a reconcile)
		}
		out.Replicas = append(out.Replicas, ReplicaState{Slot: r.slot, ContainerID: r.containerID, Node: r.node, Host: r.host, HostPort: r.hostPort, State: state, Reason: r.reason, Since: r.since})
		if sev := severity[state]; sev > worst {
			worst = sev
			out.State, out.Reason, out.Since = state, r.reason, r.since
		}
	}
	if len(s.replicas) == 0 { // on Swarm, between a service gone and its tasks
		out.State, out.Reason = RuntimeRestarting, "no task runs"
	}
	return out
}

// backend is where the router reaches the replica.
func (r *replica) backend() string {
	if r.host == "" {
		return backendAddr(r.hostPort)
	}
	return net.JoinHostPort(r.host, strconv.Itoa(r.hostPort))
}

// kick asks the replica's supervisor to look at its container now.
func (r *replica) kick() {
	select {
	case r.wake <- struct{}{}:
	default: // one look is pending already
	}
}

// runReplica is a replica's supervisor: it looks at the container when
// Docker reports something about it, probes it at the health check's
// interval, and starts it again when it crashed. initial: it was not seen
// healthy yet (a reconcile), so it looks at once and starts a crashed or
// missing container without waiting.
func (e *Engine) runReplica(ctx context.Context, r *replica, initial bool) {
	r.s.mu.Lock() // another replica's supervisor may write the record
	interval := r.s.d.Config.Health.Interval
	r.s.mu.Unlock()
	if interval <= 0 {
		interval = DefaultHealthInterval
	}
	probe := newGridTicker(interval)
	defer probe.Stop()
	defer func() {
		if r.prober != nil {
			r.prober.Close()
		}
	}()
	restart := time.NewTimer(time.Hour)
	restart.Stop()
	defer restart.Stop()
	schedule := func(after time.Duration) {
		if after >= 0 {
			restart.Reset(after)
		}
	}
	if initial {
		schedule(e.check(ctx, r, true))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			// A crash seen in Docker's events is known already: its
			// restart is planned at once, and its store write goes on
			// beside it, so that a slow store does not delay the restart.
			// Then the container is looked at anyway (it may be gone, or
			// started again behind Clank's back).
			if after, ok := e.takeCrash(ctx, r); ok {
				schedule(after)
			}
			schedule(e.check(ctx, r, false))
		case <-probe.C:
			schedule(e.probe(ctx, r))
			probe.next()
		case <-restart.C:
			schedule(e.restart(ctx, r))
		}
	}
}

// gridTicker is a ticker whose ticks are the multiples of its interval
// (counted from the Unix epoch), so that every supervisor and watch with
// the same interval wakes on the same ticks: fifty idle services cost the
// process one wake-up per interval, whose probes run side by side, rather
// than fifty wake-ups at scattered times (each a thread woken, a spin for
// work and a sleep again, which cost several times the probe itself).
// After each tick received, next arms the following one.
type gridTicker struct {
	*time.Timer
	interval time.Duration
	tick     time.Time // the tick armed
}

func newGridTicker(interval time.Duration) *gridTicker {
	now := time.Now()
	g := &gridTicker{interval: interval, tick: now.Add(interval - time.Duration(now.UnixNano()%int64(interval)))}
	g.Timer = time.NewTimer(g.tick.Sub(now))
	return g
}

// next arms the tick after the one received; as with a time.Ticker, a tick
// whose time passed while the receiver was busy comes at once.
func (g *gridTicker) next() {
	now := time.Now()
	g.tick = g.tick.Add(g.interval)
	if g.tick.Before(now) {
		g.tick = now.Add(-time.Duration(now.UnixNano() % int64(g.interval))) // the last one that passed
	}
	g.Reset(g.tick.Sub(now))
}

// noRestart is what check, probe and restart return when no start is due.
const noRestart = time.Duration(-1)

// check looks at the replica's container with the Docker engine and brings
// the replica in line: a container that exited crashed (started again after
// the backoff, at once when initial), a running one that is verified is
// routed. It returns when to start the container again (noRestart: not due).
func (e *Engine) check(ctx context.Context, r *replica, initial bool) time.Duration {
	s := r.s
	s.mu.Lock()
	d, state := s.d, r.state
	rec := store.Replica{Slot: r.slot, ContainerID: r.containerID, HostPort: r.hostPort, Label: r.label}
	s.mu.Unlock()
	lost := e.docker.lost.Load()
	c, err := e.verify(ctx, d, rec)
	switch {
	case ctx.Err() != nil:
		return noRestart
	case errors.Is(err, ErrContainerNotFound), errors.Is(err, errNotOurs):
		if state == RuntimeCrashed && !initial {
			return noRestart // known; its restart is due
		}
		if errors.Is(err, errNotOurs) {
			e.log.Warn("the recorded container is not the deployment's: starting a new one", "deployment", d.ID, "err", err)
		}
		s.mu.Lock()
		r.containerID = "" // a new container is needed
		s.mu.Unlock()
		return e.crashed(ctx, r, "container removed", "", initial)
	case err != nil: // the Docker engine does not answer: the reconnect looks again
		s.mu.Lock()
		r.verified = false
		s.mu.Unlock()
		return noRestart
	case !c.Running:
		if state == RuntimeCrashed && !initial {
			return noRestart // known; its restart is due
		}
		return e.crashed(ctx, r, exitDescription(c), exitDescription(c), initial)
	}
	// Running and this deployment's, unless Docker was lost since the look
	// began: then dockerLost unverifies it, and the reconnect looks again.
	s.mu.Lock()
	if e.docker.lost.Load() != lost {
		s.mu.Unlock()
		return noRestart
	}
	r.verified = true
	moved := c.HostPort != r.hostPort
	r.hostPort = c.HostPort
	s.mu.Unlock()
	if moved {
		rec.HostPort = c.HostPort
		if err := e.store.SetReplica(context.WithoutCancel(ctx), d.ID, rec); err != nil {
			e.log.Warn("record container port", "deployment", d.ID, "err", err)
		}
	}
	if state == RuntimeCrashed || state == RuntimeRestarting || state == "" {
		// Started again (by the restart, or behind Clank's back), or found
		// running at a reconcile: the next probe says healthy or not, and
		// routes it. A restart still due finds it no longer crashed.
		s.mu.Lock()
		r.state = ""
		s.mu.Unlock()
		return e.probe(ctx, r)
	}
	e.routeReplicas(s, false)
	return noRestart
}

// oomKilled names an exit the kernel's OOM killer caused.
const oomKilled = "OOM killed"

// exitDescription says how a container ended: "exit 137 (OOM killed)".
func exitDescription(c Container) string {
	s := fmt.Sprintf("exit %d", c.ExitCode)
	if c.OOMKilled {
		s += " (" + oomKilled + ")"
	}
	return s
}

// crashed records that the replica's container is down (reason says how;
// lastExit is its exit, "" when it is gone), makes the service unavailable
// until something healthy answers, tells the watch, and returns when to
// start it again: at once when immediate (found down at a reconcile), else
// after the backoff.
func (e *Engine) crashed(ctx context.Context, r *replica, reason, lastExit string, immediate bool) time.Duration {
	delay := e.markCrashed(r, reason, lastExit, immediate)
	e.recordCrash(ctx, r)
	return delay
}

// markCrashed is the part of crashed that needs no I/O, so that a crash
// Docker reports is acted on the moment its event arrives: the replica is
// crashed, out of the route, the change published and the watch told. The
// store write is left to recordCrash (or takeCrash). A replica already crashed is left as
// it is (Docker's event and a look at the container may both report the same
// exit). It returns when to start the container again.
func (e *Engine) markCrashed(r *replica, reason, lastExit string, immediate bool) time.Duration {
	s := r.s
	now := time.Now()
	s.mu.Lock()
	if r.state == RuntimeCrashed {
		after := max(time.Until(r.restartAt), 0)
		s.mu.Unlock()
		return after
	}
	if !r.healthySince.IsZero() && now.Sub(r.healthySince) >= BackoffReset {
		r.crashes = 0
	}
	delay := min(RestartBackoffMin<<min(r.crashes, 10), RestartBackoffMax)
	if immediate {
		delay = 0
	}
	r.crashes++
	r.state, r.reason, r.since, r.failures, r.healthySince = RuntimeCrashed, reason, now, 0, time.Time{}
	r.restartAt = now.Add(delay)
	msg := fmt.Sprintf("%scrashed: %s; starting it again in %s", replicaPrefix(s.d, r.slot), reason, delay)
	if lastExit != "" {
		s.d.LastExit = lastExit // written by recordCrash
	}
	r.unrecorded = &crashNote{lastExit: lastExit, msg: msg}
	d := s.d
	s.mu.Unlock()

	e.log.Warn("ACTIVE container crashed", "service", d.Service, "deployment", d.ID, "reason", reason, "restart_in", delay)
	e.routeReplicas(s, true)
	e.publishRuntime(s, msg)
	e.watchCrash(s, reason)
	return delay
}

// recordCrash writes the crash markCrashed noted, if one is not written
// yet, after any write still on its way.
func (e *Engine) recordCrash(ctx context.Context, r *replica) {
	s := r.s
	s.mu.Lock()
	note, pending, d := r.unrecorded, r.recorded, s.d
	r.unrecorded = nil
	s.mu.Unlock()
	if note == nil {
		return
	}
	if pending != nil {
		<-pending
	}
	e.writeExit(ctx, s, d.ID, note)
}

// takeCrash takes the crash markCrashed noted from a Docker event, if any:
// it has it written on a goroutine of the supervision's (a restart waits
// for that write before its own, so that the events stay in order), and
// returns when the restart is due (ok false: no crash noted).
func (e *Engine) takeCrash(ctx context.Context, r *replica) (after time.Duration, ok bool) {
	s := r.s
	s.mu.Lock()
	note := r.unrecorded
	if note == nil {
		s.mu.Unlock()
		return noRestart, false
	}
	r.unrecorded = nil
	d, due, prev := s.d, r.restartAt, r.recorded
	done := make(chan struct{})
	r.recorded = done
	s.mu.Unlock()
	write := func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		e.writeExit(ctx, s, d.ID, note)
	}
	if !e.spawn(&s.wg, write) {
		write() // Close began
	}
	return max(time.Until(due), 0), true
}

// writeExit records a crash's exit in the store, with its event.
func (e *Engine) writeExit(ctx context.Context, s *supervised, id string, note *crashNote) {
	if note.lastExit == "" {
		return // the container is gone: nothing to record but the restart
	}
	nd, err := e.store.RecordExit(context.WithoutCancel(ctx), id, note.lastExit, note.msg)
	if err != nil {
		e.log.Error("record container exit", "deployment", id, "err", err)
		return
	}
	s.mu.Lock()
	counted := s.d.Restarts // a restart may have counted itself in memory already
	s.d = nd
	s.d.Restarts = max(nd.Restarts, counted)
	s.mu.Unlock()
}

// sawExit acts on Docker's report that container id of this instance exited
// (a die event, with its exit code): if a supervisor has it, and its labels
// are the supervised deployment's, the replica is crashed at once, without
// waiting for a look at the container (Docker said so), and its goroutine is
// woken to record it and plan the restart. It reports whether it did.
func (e *Engine) sawExit(ev RuntimeEvent) bool {
	code, err := strconv.Atoi(ev.Labels[attrExitCode])
	if err != nil {
		return false // no exit code: the supervisor looks at the container
	}
	r := e.replicaOf(ev.ID)
	if r == nil {
		return false
	}
	s := r.s
	s.mu.Lock()
	ours := r.containerID == ev.ID && ev.Labels[LabelService] == s.d.Service &&
		ev.Labels[LabelDeployment] == s.d.ContainerDeployment(store.Replica{Label: r.label}) && r.state != RuntimeCrashed
	exit := exitDescription(Container{ExitCode: code, OOMKilled: r.oom})
	s.mu.Unlock()
	if ours {
		e.markCrashed(r, exit, exit, false)
	}
	r.kick()
	return true
}

// sawOOM notes Docker's report that the kernel killed a process of
// container id for memory: the container's exit is named "OOM killed" (the
// oom event comes before the die; should it come after, the crash already
// marked is renamed).
func (e *Engine) sawOOM(ev RuntimeEvent) bool {
	r := e.replicaOf(ev.ID)
	if r == nil {
		return false
	}
	s := r.s
	s.mu.Lock()
	var renamed string
	if r.containerID == ev.ID {
		r.oom = true
		if r.state == RuntimeCrashed && strings.HasPrefix(r.reason, "exit ") && !strings.Contains(r.reason, oomKilled) {
			r.reason += " (" + oomKilled + ")"
			s.d.LastExit = r.reason
			if r.unrecorded != nil {
				r.unrecorded.lastExit = r.reason
			} else {
				r.unrecorded = &crashNote{lastExit: r.reason, msg: "crashed: " + r.reason}
			}
			renamed = "crashed: " + r.reason
		}
	}
	s.mu.Unlock()
	if renamed != "" {
		e.publishRuntime(s, renamed)
	}
	r.kick()
	return true
}

// replicaOf is the replica that supervises container id, nil if none does.
func (e *Engine) replicaOf(id string) *replica {
	e.supMu.Lock()
	defer e.supMu.Unlock()
	return e.byContainer[id]
}

// probe runs the health check once on a running replica and records the
// answer. A probe that gets no answer at all has the container looked at
// at once: it may have died.
func (e *Engine) probe(ctx context.Context, r *replica) time.Duration {
	s := r.s
	s.mu.Lock()
	d, port, state, verified := s.d, r.hostPort, r.state, r.verified
	s.mu.Unlock()
	if state == RuntimeCrashed || port == 0 || !verified {
		// Until Docker confirms the container (a reconcile, Docker away),
		// whatever answers on the port may be another container's.
		return noRestart
	}
	cfg := d.Config.Health
	err := e.probeReplica(ctx, r, port, cfg.Path, cfg.Timeout)
	if ctx.Err() != nil {
		return noRestart
	}
	now := time.Now()
	s.mu.Lock()
	if r.state == RuntimeCrashed || r.hostPort != port {
		s.mu.Unlock()
		return noRestart // it changed meanwhile
	}
	was := r.state
	if err == nil {
		r.failures, r.reason = 0, ""
		if r.state != RuntimeHealthy {
			r.state, r.since, r.healthySince = RuntimeHealthy, now, now
		}
	} else {
		r.failures++
		r.reason = oneLine(err.Error())
		if r.state != RuntimeUnhealthy && r.state != RuntimeRestarting {
			r.state, r.since = RuntimeUnhealthy, now // a restart's own wait decides for a restarting one
		}
	}
	failures, reason, state := r.failures, r.reason, r.state
	s.mu.Unlock()

	routable := func(st string) bool { return st == RuntimeHealthy || st == RuntimeUnhealthy }
	if routable(state) && !routable(was) {
		e.routeReplicas(s, false)
	}
	switch {
	case state == RuntimeHealthy && was != RuntimeHealthy && was != "":
		e.publishRuntime(s, replicaPrefix(d, r.slot)+"healthy again")
	case state == RuntimeHealthy && was == "":
		e.publishRuntime(s, replicaPrefix(d, r.slot)+"healthy")
	case state == RuntimeUnhealthy && was != RuntimeUnhealthy:
		e.publishRuntime(s, replicaPrefix(d, r.slot)+"unhealthy: "+reason)
	}
	if err != nil {
		e.watchFailures(s, failures, reason)
		if !errors.Is(err, errUnhealthy) {
			return e.check(ctx, r, false) // no answer: did it die?
		}
	}
	return noRestart
}

// restart starts the replica's crashed container again from the same
// snapshot, as the same deployment: the same container when it still exists
// (its log keeps the crash), else a new one, its image pulled first if the
// local engine lost it (as a deploy would). It returns when to try again if
// the start failed.
func (e *Engine) restart(ctx context.Context, r *replica) time.Duration {
	s := r.s
	bg := context.WithoutCancel(ctx)
	s.mu.Lock()
	if r.state != RuntimeCrashed {
		s.mu.Unlock()
		return noRestart
	}
	id, slot := r.containerID, r.slot
	n := s.d.Restarts + 1
	r.state, r.reason, r.since, r.oom = RuntimeRestarting, fmt.Sprintf("start %d", n), time.Now(), false
	s.d.Restarts = n // written below; the event says it first
	d := s.d
	s.mu.Unlock()

	msg := fmt.Sprintf("restart %d: starting the container%s again from the same snapshot", n, replicaNote(d, slot))
	e.log.Info("restarting ACTIVE container", "service", d.Service, "deployment", d.ID, "restart", n, "replica", slot)
	e.publishRuntime(s, msg)
	s.mu.Lock()
	pending := r.recorded
	s.mu.Unlock()
	if pending != nil {
		<-pending // the crash's own record comes first
	}
	if nd, err := e.store.RecordRestart(bg, d.ID, msg); err != nil {
		e.log.Error("record restart", "deployment", d.ID, "err", err)
	} else {
		d = nd
		s.mu.Lock()
		s.d = nd
		s.mu.Unlock()
	}

	c, err := e.startAgain(ctx, d, slot, id)
	if ctx.Err() != nil {
		return noRestart
	}
	if err != nil {
		return e.crashed(ctx, r, "start failed: "+oneLine(err.Error()), "", false)
	}
	e.supMu.Lock()
	delete(e.byContainer, id)
	e.byContainer[c.ID] = r
	e.supMu.Unlock()
	s.mu.Lock()
	r.containerID, r.hostPort, r.label = c.ID, c.HostPort, labelOf(c)
	s.mu.Unlock()
	if err := e.store.SetReplica(bg, d.ID, store.Replica{Slot: slot, ContainerID: c.ID, HostPort: c.HostPort, Label: labelOf(c)}); err != nil {
		e.log.Error("record restarted container", "deployment", d.ID, "err", err)
	}

	if err := e.waitHealthy(ctx, d, c.ID, c.HostPort); err != nil {
		if ctx.Err() != nil {
			return noRestart
		}
		if now, ierr := e.rt.Inspect(ctx, c.ID); ierr == nil && !now.Running {
			return e.crashed(ctx, r, exitDescription(now), exitDescription(now), false)
		}
		// It runs but does not pass: route it anyway (nothing better answers)
		// and let the probes and the watch say so.
		s.mu.Lock()
		r.state, r.reason, r.since = RuntimeUnhealthy, oneLine(err.Error()), time.Now()
		s.mu.Unlock()
		e.publishRuntime(s, "unhealthy after restart: "+oneLine(err.Error()))
		return e.check(ctx, r, false)
	}
	return e.check(ctx, r, false) // verify, then the probe routes it
}

// startAgain starts container id of d's replica slot again, or a new
// container from d's snapshot when id is gone.
func (e *Engine) startAgain(ctx context.Context, d store.Deployment, slot int, id string) (Container, error) {
	if id != "" {
		c, err := e.rt.Restart(ctx, id)
		if !errors.Is(err, ErrContainerNotFound) {
			return c, err
		}
	}
	if err := e.ensureImage(ctx, &d); err != nil {
		return Container{}, err
	}
	return e.rt.Start(ctx, e.containerSpec(d, slot, newID("")[:6]))
}

// labelOf is the deployment label a container carries.
func labelOf(c Container) string { return c.Labels[LabelDeployment] }

// routeReplicas points the deployment's route at its healthy verified
// replicas, or, when none is healthy, at those that run but fail their
// health check (nothing better answers), or, when none runs, makes it
// unavailable: lost says it just stopped answering, so requests wait
// RecoverHold for a restart or a rollback.
func (e *Engine) routeReplicas(s *supervised, lost bool) {
	s.mu.Lock()
	d := s.d
	var healthy, unhealthy []string
	next := time.Time{}
	for _, r := range s.replicas {
		switch {
		case !r.verified || r.hostPort == 0:
		case r.state == RuntimeHealthy:
			healthy = append(healthy, r.backend())
		case r.state == RuntimeUnhealthy:
			unhealthy = append(unhealthy, r.backend())
		}
		if r.state == RuntimeCrashed && (next.IsZero() || r.restartAt.Before(next)) {
			next = r.restartAt
		}
	}
	s.mu.Unlock()
	backends := healthy
	if len(backends) == 0 {
		backends = unhealthy
	}
	hold := time.Duration(0)
	if lost {
		hold = RecoverHold
	}
	retry := time.Until(next) + time.Second
	e.routeIfOwner(d.ID, d.Service, d.Config.Domains, backends, hold, retry)
}

// publishRuntime streams a change of a supervised deployment's runtime.
func (e *Engine) publishRuntime(s *supervised, msg string) {
	s.mu.Lock()
	d := s.d
	rs := s.stateLocked()
	s.mu.Unlock()
	e.publish(Event{Type: EventRuntime, Service: d.Service, Deployment: &d, Status: d.Status, Runtime: rs, Message: msg})
}

// probeReplica is one health probe of a replica's container on port, on
// the connection kept from its last probe (a new one when the port or the
// path changed).
func (e *Engine) probeReplica(ctx context.Context, r *replica, port int, path string, timeout time.Duration) error {
	if p := r.prober; p != nil && (p.port != port || p.path != path) {
		p.Close()
		r.prober = nil
	}
	if r.prober == nil {
		p, err := newKeptProbe(port, path)
		if err != nil {
			return err
		}
		r.prober = p
	}
	return r.prober.probe(ctx, timeout)
}

// probeSupervised is one health probe of a running container (on Swarm). It keeps the
// connection alive between probes: fifty idle services cost a probe each
// per interval, not a TCP handshake each too.
func (e *Engine) probeSupervised(ctx context.Context, url string, timeout time.Duration) error {
	return probeWith(ctx, e.keepAlive, url, timeout)
}
