// Package swarm is engine.Runtime and engine.Swarm on a Docker engine that is
// a Swarm manager: each deployment is one Swarm service whose tasks publish
// the deployment's port in host mode on an ephemeral port of their node
// (never through the ingress routing mesh). Images, builds, containers and
// events are the Docker runtime's (engine/docker); docs/scale-out.md says how
// it runs across machines.
package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/docker"
)

var (
	_ engine.Runtime = (*Runtime)(nil)
	_ engine.Swarm   = (*Runtime)(nil)
)

// RestartDelay is how long Swarm waits before it starts a task again in
// place of one that ended.
const RestartDelay = time.Second

// ErrNotManager is matched (errors.Is) by the error of New when the Docker
// engine is not a Swarm manager.
var ErrNotManager = errors.New("the Docker engine is not a Swarm manager")

// Runtime is the Docker runtime plus Swarm services.
type Runtime struct {
	*docker.Runtime
	cli *client.Client
}

// New is the Swarm runtime on rt's engine, which must be a Swarm manager:
// otherwise the error says so and how to make it one.
func New(ctx context.Context, rt *docker.Runtime) (*Runtime, error) {
	r := &Runtime{Runtime: rt, cli: rt.Client()}
	if err := r.CheckManager(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// CheckManager says whether the engine is a Swarm manager, and if not, why.
func (r *Runtime) CheckManager(ctx context.Context) error {
	res, err := r.cli.Info(ctx, client.InfoOptions{})
	if err != nil {
		return fmt.Errorf("ask the Docker engine whether it is a Swarm manager: %w", err)
	}
	s := res.Info.Swarm
	switch {
	case s.LocalNodeState != swarm.LocalNodeStateActive:
		return fmt.Errorf("%w: it is in no swarm (state %q); run `docker swarm init` on this machine, or run Clank on a manager of your swarm", ErrNotManager, s.LocalNodeState)
	case !s.ControlAvailable:
		return fmt.Errorf("%w: this node is a worker of swarm node %s; run Clank on a manager (`docker node ls` there)", ErrNotManager, s.NodeID)
	}
	return nil
}

// Events is the Docker runtime's events plus Swarm's service and node
// events (a service event's Labels hold its "name").
func (r *Runtime) Events(ctx context.Context) (<-chan engine.RuntimeEvent, <-chan error) {
	return r.EventsOf(ctx, []string{engine.EventTypeService, engine.EventTypeNode}, []string{"create", "update", "remove"})
}

// CreateService creates spec's Swarm service: replicated with spec.Replicas
// tasks, Clank's labels on the service, the image as given (pinned by
// digest), env, limits, a restart policy that starts an ended task again
// after RestartDelay, placement, and the port published in host mode with no
// published port, so that each task gets an ephemeral port of its node.
// The manager does not ask the registry for the digest: the caller pinned it.
func (r *Runtime) CreateService(ctx context.Context, spec engine.SwarmSpec) error {
	if spec.Port < 1 || spec.Port > 65535 {
		return fmt.Errorf("create Swarm service %q: port %d is not a TCP port", spec.Name, spec.Port)
	}
	replicas := uint64(max(spec.Replicas, 0))
	delay := RestartDelay
	prefs, err := placementPrefs(spec.PlacementPrefs)
	if err != nil {
		return fmt.Errorf("create Swarm service %q: %w", spec.Name, err)
	}
	s := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: spec.Name, Labels: maps.Clone(spec.Labels)},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image: spec.Image,
				Env:   docker.EnvList(spec.Env),
			},
			Resources: &swarm.ResourceRequirements{Limits: &swarm.Limit{
				NanoCPUs:    int64(math.Round(spec.CPUs * 1e9)),
				MemoryBytes: spec.MemoryBytes,
			}},
			RestartPolicy: &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny, Delay: &delay},
			Placement:     &swarm.Placement{Constraints: slices.Clone(spec.Constraints), Preferences: prefs},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		EndpointSpec: &swarm.EndpointSpec{Ports: []swarm.PortConfig{{
			Protocol:    network.TCP,
			TargetPort:  uint32(spec.Port),
			PublishMode: swarm.PortConfigPublishModeHost,
		}}},
	}
	_, err = r.cli.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: s, EncodedRegistryAuth: spec.RegistryAuth})
	if err != nil {
		return fmt.Errorf("create Swarm service %q from %s: %w", spec.Name, spec.Image, err)
	}
	return nil
}

// placementPrefs turns "spread=DESCRIPTOR" preferences (the only kind Swarm
// has; engine.ValidatePlacementPref checked them) into Swarm's.
func placementPrefs(prefs []string) ([]swarm.PlacementPreference, error) {
	var out []swarm.PlacementPreference
	for _, p := range prefs {
		if err := engine.ValidatePlacementPref(p); err != nil {
			return nil, err
		}
		d, _ := strings.CutPrefix(p, "spread=")
		out = append(out, swarm.PlacementPreference{Spread: &swarm.SpreadOver{SpreadDescriptor: d}})
	}
	return out, nil
}

// Service reports the Swarm service named name, its tasks newest first, each
// with its node's hostname and address and its published port.
func (r *Runtime) Service(ctx context.Context, name string) (engine.SwarmService, error) {
	res, err := r.cli.ServiceInspect(ctx, name, client.ServiceInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return engine.SwarmService{}, fmt.Errorf("Swarm service %s: %w", name, engine.ErrSwarmServiceNotFound)
	}
	if err != nil {
		return engine.SwarmService{}, fmt.Errorf("inspect Swarm service %s: %w", name, err)
	}
	svc := service(res.Service)
	if svc.Name != name {
		// An ID or an ID prefix matched, not the name.
		return engine.SwarmService{}, fmt.Errorf("Swarm service %s: %w", name, engine.ErrSwarmServiceNotFound)
	}
	tasks, err := r.cli.TaskList(ctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", svc.ID)})
	if err != nil {
		return svc, fmt.Errorf("list the tasks of Swarm service %s: %w", name, err)
	}
	nodes, err := r.nodesByID(ctx)
	if err != nil {
		return svc, err
	}
	for _, t := range tasks.Items {
		if t.ServiceID != svc.ID {
			continue
		}
		n := nodes[t.NodeID]
		task := engine.Task{
			ID:           t.ID,
			Slot:         t.Slot,
			NodeID:       t.NodeID,
			Node:         n.Hostname,
			Addr:         n.Addr,
			State:        string(t.Status.State),
			DesiredState: string(t.DesiredState),
			Err:          t.Status.Err,
			Updated:      t.UpdatedAt,
		}
		if cs := t.Status.ContainerStatus; cs != nil {
			task.ContainerID, task.ExitCode = cs.ContainerID, cs.ExitCode
		}
		for _, p := range t.Status.PortStatus.Ports {
			if p.PublishMode == swarm.PortConfigPublishModeHost && p.Protocol == network.TCP && p.PublishedPort != 0 {
				task.Port = int(p.PublishedPort) // one port, listed per address family
				break
			}
		}
		svc.Tasks = append(svc.Tasks, task)
	}
	slices.SortFunc(svc.Tasks, func(a, b engine.Task) int { return b.Updated.Compare(a.Updated) })
	return svc, nil
}

func service(s swarm.Service) engine.SwarmService {
	out := engine.SwarmService{ID: s.ID, Name: s.Spec.Name, Labels: s.Spec.Labels}
	if m := s.Spec.Mode.Replicated; m != nil && m.Replicas != nil {
		out.Replicas = int(*m.Replicas)
	}
	return out
}

// ScaleService sets the replica count of the Swarm service named name.
func (r *Runtime) ScaleService(ctx context.Context, name string, replicas int) error {
	res, err := r.cli.ServiceInspect(ctx, name, client.ServiceInspectOptions{})
	if err != nil {
		return fmt.Errorf("scale Swarm service %s: %w", name, err)
	}
	spec := res.Service.Spec
	if spec.Mode.Replicated == nil {
		return fmt.Errorf("scale Swarm service %s: it is not replicated", name)
	}
	n := uint64(max(replicas, 0))
	spec.Mode.Replicated.Replicas = &n
	if _, err := r.cli.ServiceUpdate(ctx, res.Service.ID, client.ServiceUpdateOptions{Version: res.Service.Version, Spec: spec}); err != nil {
		return fmt.Errorf("scale Swarm service %s to %d: %w", name, replicas, err)
	}
	return nil
}

// RemoveService removes the Swarm service named name (its tasks' containers
// go with it); a missing one is not an error.
func (r *Runtime) RemoveService(ctx context.Context, name string) error {
	svc, err := r.Service(ctx, name)
	if errors.Is(err, engine.ErrSwarmServiceNotFound) {
		return nil
	}
	if svc.ID == "" {
		return err
	}
	if _, err := r.cli.ServiceRemove(ctx, svc.ID, client.ServiceRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove Swarm service %s: %w", name, err)
	}
	return nil
}

// Services lists the Swarm services whose labels match all of labels.
func (r *Runtime) Services(ctx context.Context, labels map[string]string) ([]engine.SwarmService, error) {
	filters := make(client.Filters)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		filters.Add("label", k+"="+labels[k])
	}
	res, err := r.cli.ServiceList(ctx, client.ServiceListOptions{Filters: filters})
	if err != nil {
		return nil, fmt.Errorf("list Swarm services labelled %v: %w", labels, err)
	}
	out := make([]engine.SwarmService, 0, len(res.Items))
	for _, s := range res.Items {
		out = append(out, service(s))
	}
	slices.SortFunc(out, func(a, b engine.SwarmService) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Nodes lists the Swarm's nodes, managers first.
func (r *Runtime) Nodes(ctx context.Context) ([]engine.Node, error) {
	res, err := r.cli.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list the Swarm's nodes: %w", err)
	}
	out := make([]engine.Node, 0, len(res.Items))
	for _, n := range res.Items {
		out = append(out, node(n))
	}
	slices.SortFunc(out, func(a, b engine.Node) int {
		if a.Role != b.Role {
			return strings.Compare(a.Role, b.Role) // manager < worker
		}
		return strings.Compare(a.Hostname, b.Hostname)
	})
	return out, nil
}

func (r *Runtime) nodesByID(ctx context.Context) (map[string]engine.Node, error) {
	nodes, err := r.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[string]engine.Node, len(nodes))
	for _, n := range nodes {
		m[n.ID] = n
	}
	return m, nil
}

// node is a Swarm node as Clank shows it. Its address is where its published
// ports answer: the address it reports, or its manager address when it
// reports none (a manager may say 0.0.0.0).
func node(n swarm.Node) engine.Node {
	out := engine.Node{
		ID:           n.ID,
		Hostname:     n.Description.Hostname,
		Addr:         n.Status.Addr,
		Role:         string(n.Spec.Role),
		State:        string(n.Status.State),
		Availability: string(n.Spec.Availability),
	}
	if m := n.ManagerStatus; m != nil {
		out.Leader = m.Leader
		if ip := net.ParseIP(out.Addr); out.Addr == "" || (ip != nil && ip.IsUnspecified()) {
			if host, _, err := net.SplitHostPort(m.Addr); err == nil {
				out.Addr = host
			}
		}
	}
	return out
}

// ServiceLogs copies the output of every task of the Swarm service named
// name to w (the last opts.Tail lines, all when <= 0; then more with
// opts.Follow, until ctx ends).
func (r *Runtime) ServiceLogs(ctx context.Context, name string, opts engine.LogOptions, w io.Writer) error {
	tail := "all"
	if opts.Tail > 0 {
		tail = strconv.Itoa(opts.Tail)
	}
	rc, err := r.cli.ServiceLogs(ctx, name, client.ServiceLogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: opts.Follow, Tail: tail, Timestamps: opts.Timestamps,
	})
	if err != nil {
		return fmt.Errorf("logs of Swarm service %s: %w", name, err)
	}
	defer rc.Close()
	if _, err := stdcopy.StdCopy(w, w, rc); err != nil && ctx.Err() == nil {
		return fmt.Errorf("logs of Swarm service %s: %w", name, err)
	}
	return nil
}
