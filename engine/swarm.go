package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/clank-dev/clank/store"
)

// Docker Swarm as the runtime (docs/scale-out.md). With a Runtime that is
// also a Swarm, each deployment is one Swarm service, clank-<service>-<number>,
// whose tasks Swarm schedules on its nodes, restarts and replaces; each task
// publishes the deployment's port in host mode on an ephemeral port of its
// node. Blue-green stays Clank's: green is a new Swarm service beside blue,
// its tasks probed at their node's address, then the router switches to them,
// blue drains and its Swarm service is removed. Swarm's own update and
// rollback are never used. Between deploys Clank follows Swarm (service, node
// and container events, and the task list at each health interval) and routes
// to the tasks that run and pass their health check.

// Swarm task states Clank reads (Swarm's own words).
const (
	TaskRunning = "running"
)

// ErrSwarmServiceNotFound is returned by Swarm.Service for a Swarm service
// that does not exist (any more).
var ErrSwarmServiceNotFound = errors.New("Swarm service not found")

// Swarm runs each deployment as one Swarm service. engine/swarm implements it
// (with Runtime) on a Docker engine that is a Swarm manager.
type Swarm interface {
	// CreateService creates the Swarm service of spec; its tasks start in
	// the background.
	CreateService(ctx context.Context, spec SwarmSpec) error
	// Service reports the Swarm service named name with its tasks, newest
	// first; ErrSwarmServiceNotFound if there is none.
	Service(ctx context.Context, name string) (SwarmService, error)
	// ScaleService sets the Swarm service's replica count.
	ScaleService(ctx context.Context, name string, replicas int) error
	// RemoveService removes a Swarm service and its tasks; a missing one is
	// not an error.
	RemoveService(ctx context.Context, name string) error
	// Services lists the Swarm services whose labels match all of labels
	// (without their tasks).
	Services(ctx context.Context, labels map[string]string) ([]SwarmService, error)
	// Nodes lists the Swarm's nodes.
	Nodes(ctx context.Context) ([]Node, error)
	// ServiceLogs copies the output of every task of a Swarm service to w;
	// with opts.Follow it waits for more until ctx ends.
	ServiceLogs(ctx context.Context, name string, opts LogOptions, w io.Writer) error
}

// SwarmSpec is one deployment's Swarm service.
type SwarmSpec struct {
	ContainerSpec // Name is the Swarm service's; Labels go on the service
	Replicas      int
	// Constraints and PlacementPrefs are Swarm's placement rules
	// ("node.role==worker", "spread=node.labels.zone").
	Constraints    []string
	PlacementPrefs []string
	// RegistryAuth is the X-Registry-Auth the nodes pull the image with
	// ("" for none).
	RegistryAuth string
}

// SwarmService is a Swarm service as the manager reports it.
type SwarmService struct {
	ID       string
	Name     string
	Labels   map[string]string
	Replicas int
	Tasks    []Task // newest first
}

// Task is one task of a Swarm service.
type Task struct {
	ID           string
	ContainerID  string
	Slot         int
	NodeID       string
	Node         string // the node's hostname
	Addr         string // the node's address, where its published ports answer
	Port         int    // the published host port (0 until Swarm reports it)
	State        string // Swarm's: new, pending, ..., running, complete, failed, shutdown, rejected, ...
	DesiredState string
	Err          string // why it ended, as Swarm says
	ExitCode     int
	Updated      time.Time
}

// Backend is where the router reaches the task: its node's address and
// published port ("" until both are known).
func (t Task) Backend() string {
	if t.Addr == "" || t.Port == 0 {
		return ""
	}
	return net.JoinHostPort(t.Addr, strconv.Itoa(t.Port))
}

// serving reports whether Swarm wants the task running and it runs with its
// port published.
func (t Task) serving() bool {
	return t.DesiredState == TaskRunning && t.State == TaskRunning && t.Backend() != ""
}

// stopped reports whether Swarm stopped the task on purpose (a scale down,
// the service's removal), as opposed to a task that failed or whose node
// was lost.
func (t Task) stopped() bool {
	return t.State == "shutdown" && t.Err == ""
}

// ended says how a task that stopped ended: "failed: task: non-zero exit (137)".
func (t Task) ended() string {
	s := t.State
	if t.Err != "" {
		s += ": " + t.Err
	}
	return s
}

// Node is one node of the Swarm.
type Node struct {
	ID           string
	Hostname     string
	Addr         string
	Role         string // manager or worker
	Leader       bool
	State        string // ready, down, unknown, disconnected
	Availability string // active, pause, drain
	Tasks        int    // running tasks of this Clank's deployments (Engine.Nodes)
}

// SwarmMode reports whether the engine runs deployments as Swarm services.
func (e *Engine) SwarmMode() bool { return e.swarm != nil }

// Nodes lists the Swarm's nodes with how many of this instance's tasks run
// on each; none when the engine does not run on Swarm.
func (e *Engine) Nodes(ctx context.Context) ([]Node, error) {
	if e.swarm == nil {
		return nil, nil
	}
	nodes, err := e.swarm.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: list the Swarm's nodes: %v", ErrUnavailable, err)
	}
	svcs, err := e.swarm.Services(ctx, map[string]string{LabelOwner: e.owner})
	if err != nil {
		return nil, fmt.Errorf("%w: list Clank's Swarm services: %v", ErrUnavailable, err)
	}
	count := map[string]int{}
	for _, s := range svcs {
		full, err := e.swarm.Service(ctx, s.Name)
		if err != nil {
			continue // removed meanwhile
		}
		for _, t := range full.Tasks {
			if t.DesiredState == TaskRunning && t.State == TaskRunning {
				count[t.NodeID]++
			}
		}
	}
	for i := range nodes {
		nodes[i].Tasks = count[nodes[i].ID]
	}
	return nodes, nil
}

// Tasks lists the tasks of deployment d's Swarm service (nil when the engine
// does not run on Swarm or the service is gone).
func (e *Engine) Tasks(ctx context.Context, d store.Deployment) ([]Task, error) {
	if e.swarm == nil {
		return nil, nil
	}
	s, err := e.swarmService(ctx, d)
	if errors.Is(err, ErrSwarmServiceNotFound) {
		return nil, nil
	}
	return s.Tasks, err
}

// hasSwarmService says whether deployment d still has its Swarm service (its
// tasks' logs live there); the error says why not.
func (e *Engine) hasSwarmService(ctx context.Context, d store.Deployment) error {
	_, err := e.swarmService(ctx, d)
	switch {
	case errors.Is(err, ErrSwarmServiceNotFound), errors.Is(err, errNotOurs):
		return &notFound{fmt.Sprintf("deployment #%d of %s has no Swarm service (%s): its logs went with it", d.Number, d.Service, d.Status)}
	case err != nil:
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// SwarmServiceName is the Swarm service that runs deployment d.
func SwarmServiceName(d store.Deployment) string {
	return fmt.Sprintf("clank-%s-%d", d.Service, d.Number)
}

// swarmService is deployment d's Swarm service, checked to be this
// instance's and d's by its labels (errNotOurs otherwise).
func (e *Engine) swarmService(ctx context.Context, d store.Deployment) (SwarmService, error) {
	s, err := e.swarm.Service(ctx, SwarmServiceName(d))
	if err != nil {
		return s, err
	}
	if s.Labels[LabelOwner] != e.owner || s.Labels[LabelService] != d.Service || s.Labels[LabelDeployment] != d.ID {
		return s, fmt.Errorf("Swarm service %s is labelled for %s/%s (owner %s), not %s/%s: %w", s.Name,
			s.Labels[LabelService], s.Labels[LabelDeployment], s.Labels[LabelOwner], d.Service, d.ID, errNotOurs)
	}
	return s, nil
}

// swarmSpec is the Swarm service that runs deployment d's snapshot with
// replicas tasks.
func (e *Engine) swarmSpec(d store.Deployment, replicas int) SwarmSpec {
	c := e.containerSpec(d, 0, "")
	c.Name = SwarmServiceName(d)
	delete(c.Labels, LabelReplica) // Swarm numbers its tasks itself
	spec := SwarmSpec{
		ContainerSpec:  c,
		Replicas:       replicas,
		Constraints:    d.Config.Constraints,
		PlacementPrefs: d.Config.PlacementPrefs,
	}
	if e.opts.RegistryAuth != nil {
		spec.RegistryAuth = e.opts.RegistryAuth(d.Config.Image)
	}
	return spec
}

// createSwarmService creates deployment d's Swarm service with replicas
// tasks. A service of that name left by this instance for d (a restart during
// a deploy) is replaced; one that is someone else's is an error.
func (e *Engine) createSwarmService(ctx context.Context, d store.Deployment, replicas int) error {
	if _, err := e.swarmService(ctx, d); err == nil {
		if err := e.swarm.RemoveService(ctx, SwarmServiceName(d)); err != nil {
			return err
		}
	} else if !errors.Is(err, ErrSwarmServiceNotFound) {
		return err
	}
	return e.swarm.CreateService(ctx, e.swarmSpec(d, replicas))
}

// removeSwarmServices removes this instance's Swarm services whose labels
// also match labels, and says how many went.
func (e *Engine) removeSwarmServices(ctx context.Context, labels map[string]string) int {
	if e.swarm == nil {
		return 0
	}
	match := map[string]string{LabelOwner: e.owner}
	for k, v := range labels {
		match[k] = v
	}
	svcs, err := e.swarm.Services(ctx, match)
	if err != nil {
		e.log.Warn("list Swarm services", "labels", labels, "err", err)
		return 0
	}
	n := 0
	for _, s := range svcs {
		if err := e.swarm.RemoveService(ctx, s.Name); err != nil {
			e.log.Warn("remove Swarm service", "name", s.Name, "err", err)
			continue
		}
		n++
	}
	return n
}

// swarmLocalRefusal refuses a deployment in Swarm mode whose image only the
// local engine has: the other nodes could not pull it.
func (e *Engine) swarmLocalRefusal(image, source string) error {
	if e.swarm == nil || source != store.SourceLocal {
		return nil
	}
	return refuse(nil, fmt.Sprintf("image %s is local-only (built here, never pushed): on Docker Swarm every node pulls the image, so it must come from a registry every node can reach (push it to the Clank registry, or use an external registry)", image))
}

// runSwarm is run on Swarm: it takes a created deployment through DEPLOYING
// (its Swarm service created) -> HEALTH_CHECKING (every task probed at its
// node's address) -> ACTIVE, switches the router to its tasks, supervises
// them, and drains and removes the previous deployment.
func (e *Engine) runSwarm(ctx context.Context, d store.Deployment, prev *store.Deployment) {
	defer e.release(d.Service, d.ID)
	cfg := d.Config
	bg := context.WithoutCancel(ctx)
	var prevDomains []string
	if prev != nil {
		prevDomains = prev.Config.Domains
	}
	e.certs.Want(d.Service, slices.Concat(prevDomains, cfg.Domains))
	created := false
	fail := func(reason string) {
		e.failDeployment(ctx, d, prevDomains, reason, func() {
			if !created {
				return
			}
			if err := e.swarm.RemoveService(bg, SwarmServiceName(d)); err != nil {
				e.log.Warn("remove failed Swarm service", "deployment", d.ID, "err", err)
			}
		})
	}
	if err := e.swarmLocalRefusal(cfg.Image, d.ImageSource); err != nil {
		fail(err.Error())
		return
	}
	// The manager pulls too: it pins the digest of a tag no registry
	// answered for, and reads the image's schema label.
	if err := e.ensureImage(ctx, &d); err != nil {
		fail(err.Error())
		return
	}
	if err := e.swarmLocalRefusal(cfg.Image, d.ImageSource); err != nil {
		fail(err.Error())
		return
	}
	if d.Schema == "" {
		e.recordSchema(bg, &d)
	}
	replicas := replicaCount(d)
	if err := e.createSwarmService(ctx, d, replicas); err != nil {
		fail(fmt.Sprintf("create Swarm service %s: %v", SwarmServiceName(d), err))
		return
	}
	created = true
	msg := fmt.Sprintf("Swarm service %s created with %d %s; probing GET %s on each task's node", SwarmServiceName(d), replicas, plural(replicas, "task"), cfg.Health.Path)
	nd, err := e.store.SetStatus(bg, d.ID, store.StatusHealthChecking, msg)
	if err != nil {
		fail(fmt.Sprintf("record status: %v", err))
		return
	}
	d = nd
	e.publishDeployment(d, msg)
	tasks, err := e.waitTasksHealthy(ctx, d, replicas)
	if err != nil {
		fail(err.Error())
		return
	}
	backends := make([]string, len(tasks))
	for i, t := range tasks {
		backends[i] = t.Backend()
	}

	e.cutOver(ctx, d, prevDomains, backends, func(active store.Deployment, w *watch) { e.superviseSwarm(active, tasks, w) }, fail)
}

// waitTasksHealthy waits until n tasks of d's Swarm service run and each has
// passed its health check at its node's address, within the deploy timeout,
// and returns them. A task Swarm replaces meanwhile is dropped and its
// successor probed; the error quotes the last task failure and probe.
func (e *Engine) waitTasksHealthy(ctx context.Context, d store.Deployment, n int) ([]Task, error) {
	cfg := d.Config
	ctx, cancel := context.WithTimeout(ctx, cfg.DeployTimeout)
	defer cancel()
	start := time.Now()
	wait := probeMin
	passed := map[string]Task{} // task id -> the task as it passed
	var lastTask, lastProbe string
	for {
		s, err := e.swarmService(ctx, d)
		if err != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("Swarm service %s: %v", SwarmServiceName(d), err)
		}
		live := map[string]bool{}
		newestErr := true
		for _, t := range s.Tasks { // newest first
			if t.DesiredState != TaskRunning {
				if t.Err != "" && newestErr {
					lastTask, newestErr = fmt.Sprintf("task %d on %s %s", t.Slot, t.Node, t.ended()), false
				}
				continue
			}
			if !t.serving() {
				continue
			}
			live[t.ID] = true
			if p, ok := passed[t.ID]; ok && p.Backend() == t.Backend() {
				continue
			}
			url := fmt.Sprintf("http://%s%s", t.Backend(), cfg.Health.Path)
			if err := e.probeOnce(ctx, url, cfg.Health.Timeout); err != nil {
				lastProbe = fmt.Sprintf("task %d on %s (%s): %v", t.Slot, t.Node, t.Backend(), err)
				continue
			}
			passed[t.ID] = t
		}
		for id := range passed {
			if !live[id] {
				delete(passed, id) // replaced by Swarm: its successor must pass
			}
		}
		if len(passed) >= n {
			out := make([]Task, 0, len(passed))
			for _, t := range passed {
				out = append(out, t)
			}
			slices.SortFunc(out, func(a, b Task) int { return a.Slot - b.Slot })
			return out, nil
		}
		limit := min(cfg.Health.Interval, probeFastCap)
		if time.Since(start) > probeFastFor {
			limit = cfg.Health.Interval
		}
		wait = min(wait*2, limit)
		select {
		case <-ctx.Done():
			why := fmt.Sprintf("%d of %d tasks passed GET %s within %s", len(passed), n, cfg.Health.Path, cfg.DeployTimeout)
			if lastProbe != "" {
				why += "; last probe: " + lastProbe
			}
			if lastTask != "" {
				why += "; last task: " + lastTask
			}
			return nil, errors.New(why)
		case <-time.After(wait):
		}
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// ownSwarmServices lists this instance's Swarm services (none when the
// engine does not run on Swarm).
func (e *Engine) ownSwarmServices(ctx context.Context) ([]SwarmService, error) {
	if e.swarm == nil {
		return nil, nil
	}
	return e.swarm.Services(ctx, map[string]string{LabelOwner: e.owner})
}

// removeSwarmOrphans removes those of svcs (this instance's Swarm services,
// listed before live was read) whose deployment is not live (in progress,
// ACTIVE or draining).
func (e *Engine) removeSwarmOrphans(ctx context.Context, svcs []SwarmService, live map[string]bool) {
	for _, s := range svcs {
		if live[s.Labels[LabelDeployment]] {
			continue
		}
		e.log.Info("removing orphan Swarm service", "name", s.Name)
		if err := e.swarm.RemoveService(ctx, s.Name); err != nil {
			e.log.Warn("remove orphan Swarm service", "name", s.Name, "err", err)
		}
	}
}
