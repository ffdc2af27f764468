package daemon

import (
	"context"
	"maps"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/store"
)

// view turns store rows into the wire types of package api. It caches what a
// list needs more than once (source deployments' numbers, when logs were kept).
type view struct {
	e       *engine.Engine
	showEnv bool
	numbers map[string]int
	kept    map[string]store.KeptLogIndex // per service
}

func (v *view) health(h store.HealthCheck) api.HealthCheck {
	return api.HealthCheck{Path: h.Path, Interval: h.Interval.String(), Timeout: h.Timeout.String()}
}

func envKeys(env map[string]string) []string {
	keys := slices.Sorted(maps.Keys(env))
	if keys == nil {
		keys = []string{}
	}
	return keys
}

func (v *view) service(ctx context.Context, svc store.Service, status string) api.Service {
	s := api.Service{
		Name:           svc.Name,
		Image:          svc.Config.Image,
		Port:           svc.Config.Port,
		Domains:        nonNil(svc.Config.Domains),
		EnvKeys:        envKeys(svc.Config.Env),
		HealthCheck:    v.health(svc.Config.Health),
		DeployTimeout:  svc.Config.DeployTimeout.String(),
		CPUs:           svc.Config.CPUs,
		Memory:         svc.Config.MemoryBytes,
		Constraints:    nonNil(svc.Config.Constraints),
		PlacementPrefs: nonNil(svc.Config.PlacementPrefs),
		HTTPSRedirect:  svc.HTTPSRedirect,
		Status:         status,
		GitBranch:      svc.Git.Branch,
		PushBuilds:     svc.Git.PushBuilds,
		HeldImage:      svc.HeldImage,
		Replicas:       max(svc.Replicas, 1),
		CreatedAt:      svc.CreatedAt,
		UpdatedAt:      svc.UpdatedAt,
	}
	if f := svc.Freeze; f != nil {
		at := f.At
		s.Frozen, s.FrozenBy, s.FrozenAt, s.FrozenReason = true, f.By, &at, f.Reason
	}
	if svc.ActiveDeploymentID != "" {
		id := svc.ActiveDeploymentID
		s.ActiveDeploymentID = &id
		if d, err := v.e.Deployment(ctx, svc.Name, id); err == nil {
			s.ActiveNumber, s.ActiveImage = d.Number, d.Config.Image
		}
		if rs := v.e.Runtime(id); rs != nil {
			s.Runtime, s.RuntimeReason = &rs.State, rs.Reason
			s.Restarts, s.LastExit = rs.Restarts, optional(rs.LastExit)
			s.HealthyReplicas, s.ActiveReplicas = rs.Healthy(), len(rs.Replicas)
		}
	}
	s.Policy = policy(svc.Policy)
	if v.showEnv {
		s.Env = maps.Clone(svc.Config.Env)
	}
	return s
}

// policy is a service's watch policy on the wire.
func policy(p store.Policy) api.Policy {
	return api.Policy{AutoRollback: p.AutoRollback, WatchWindow: p.WatchWindow.String(),
		WatchFailures: p.WatchFailures, Watch5xx: p.Watch5xx, KeepWarm: p.KeepWarm}
}

// optional is nil for "", else a pointer to s (a JSON null or a string).
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (v *view) deployment(ctx context.Context, d store.Deployment, activeID string) api.Deployment {
	a := v.e.ImageAvailability(d)
	out := api.Deployment{
		ID:                d.ID,
		Number:            d.Number,
		Service:           d.Service,
		Kind:              string(d.Kind),
		Status:            string(d.Status),
		Image:             d.Config.Image,
		ImageDigest:       d.ImageDigest,
		Port:              d.Config.Port,
		HealthCheck:       v.health(d.Config.Health),
		DeployTimeout:     d.Config.DeployTimeout.String(),
		CPUs:              d.Config.CPUs,
		Memory:            d.Config.MemoryBytes,
		Constraints:       nonNil(d.Config.Constraints),
		PlacementPrefs:    nonNil(d.Config.PlacementPrefs),
		Domains:           nonNil(d.Config.Domains),
		EnvKeys:           envKeys(d.Config.Env),
		CreatedAt:         d.CreatedAt,
		ActivatedAt:       d.ActivatedAt,
		EndedAt:           d.EndedAt,
		RollbackCapable:   engine.CanRollBackTo(d, activeID, a),
		ImageAvailability: a.State,
		ImageSource:       d.ImageSource,
		TriggeredBy:       d.TriggeredBy,
		FailureReason:     d.FailureReason,
		Schema:            d.Schema,
		ContainerID:       d.ContainerID,
		HostPort:          d.HostPort,
		Replicas:          max(d.Replicas, 1),
		Containers:        []api.Replica{},
	}
	for _, r := range d.Containers {
		out.Containers = append(out.Containers, api.Replica{Slot: r.Slot, ContainerID: r.ContainerID, HostPort: r.HostPort})
	}
	out.ImageAvailabilityVia = a.Via
	out.LogsKeptAt = v.logsKeptAt(ctx, d)
	out.Restarts, out.LastExit = d.Restarts, optional(d.LastExit)
	out.WatchUntil, out.WatchTripped, out.WarmUntil = d.WatchUntil, d.WatchTripped, d.WarmUntil
	if d.Status == store.StatusActive {
		if rs := v.e.Runtime(d.ID); rs != nil {
			since := rs.Since
			out.Runtime, out.RuntimeReason, out.RuntimeSince = &rs.State, rs.Reason, &since
			out.Restarts, out.LastExit = rs.Restarts, optional(rs.LastExit)
			out.HealthyReplicas = rs.Healthy()
			if v.e.SwarmMode() {
				out.Tasks = tasks(rs) // its containers are Swarm's, on the nodes
			} else {
				out.Containers = replicas(rs)
			}
		}
	}
	if d.SourceDeploymentID != "" {
		id := d.SourceDeploymentID
		out.SourceDeploymentID = &id
		out.SourceNumber = v.number(ctx, id)
	}
	if v.showEnv {
		out.Env = maps.Clone(d.Config.Env)
	}
	return out
}

// logsKeptAt is when the log of one of d's removed containers was last kept.
func (v *view) logsKeptAt(ctx context.Context, d store.Deployment) *time.Time {
	x, ok := v.kept[d.Service]
	if !ok {
		x, _ = v.e.KeptLogIndex(ctx, d.Service) // none known if it fails
		if v.kept == nil {
			v.kept = map[string]store.KeptLogIndex{}
		}
		v.kept[d.Service] = x
	}
	return x.At(d)
}

// replicas are an ACTIVE deployment's containers as its supervisors see
// them now, by slot.
func replicas(rs *engine.RuntimeState) []api.Replica {
	out := make([]api.Replica, 0, len(rs.Replicas))
	for _, r := range rs.Replicas {
		state, since := r.State, r.Since
		out = append(out, api.Replica{Slot: r.Slot, ContainerID: r.ContainerID, HostPort: r.HostPort,
			Runtime: &state, RuntimeReason: r.Reason, RuntimeSince: &since})
	}
	slices.SortFunc(out, func(a, b api.Replica) int { return a.Slot - b.Slot })
	return out
}

func (v *view) number(ctx context.Context, id string) int {
	if n, ok := v.numbers[id]; ok {
		return n
	}
	n := 0
	if d, err := v.e.Deployment(ctx, "", id); err == nil {
		n = d.Number
	}
	if v.numbers == nil {
		v.numbers = map[string]int{}
	}
	v.numbers[id] = n
	return n
}

func (v *view) event(ev store.Event) api.Event {
	return api.Event{Seq: ev.ID, Type: engine.EventDeployment, Service: ev.Service, DeploymentID: ev.DeploymentID, Status: string(ev.Status), Message: ev.Message, At: ev.At}
}

func (v *view) plan(ctx context.Context, p engine.Plan) api.Plan {
	out := api.Plan{Kind: string(p.Kind), Service: p.Service.Name, Changes: []api.Change{}}
	active := p.Service.ActiveDeploymentID
	if p.Target != nil {
		t := v.deployment(ctx, *p.Target, active)
		out.Target = &t
	}
	if p.Current != nil {
		c := v.deployment(ctx, *p.Current, active)
		out.Current = &c
	}
	for _, c := range p.Changes {
		out.Changes = append(out.Changes, api.Change{Field: c.Field, Key: c.Key, Op: c.Op, From: c.From, To: c.To})
	}
	if sc := p.SchemaChange; sc != nil {
		out.SchemaChange = &api.SchemaChange{From: sc.From, To: sc.To}
	}
	if p.Refusal != nil {
		out.Refusal = p.Refusal.Error()
	}
	return out
}

// serviceStatus summarizes a service for lists: its in-progress deployment's
// status, else its ACTIVE one's, else NONE.
func serviceStatus(ctx context.Context, e *engine.Engine, svc store.Service) string {
	ds, err := e.Deployments(ctx, svc.Name, 1, 0)
	if err == nil && len(ds) > 0 && ds[0].Status.InProgress() {
		return string(ds[0].Status)
	}
	if svc.ActiveDeploymentID != "" {
		return string(store.StatusActive)
	}
	return "NONE"
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func parseDuration(s *string) (*time.Duration, error) {
	if s == nil {
		return nil, nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// tasks are an ACTIVE deployment's Swarm tasks as its supervision sees them.
func tasks(rs *engine.RuntimeState) []api.Task {
	out := make([]api.Task, 0, len(rs.Replicas))
	for _, r := range rs.Replicas {
		t := api.Task{ID: r.ContainerID, Node: r.Node, State: r.State, Reason: r.Reason}
		if r.Host != "" && r.HostPort != 0 {
			t.Addr = net.JoinHostPort(r.Host, strconv.Itoa(r.HostPort))
		}
		out = append(out, t)
	}
	return out
}
