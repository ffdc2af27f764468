package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
)

// loopback is where every container port is published.
var loopback = netip.MustParseAddr("127.0.0.1")

const (
	// hostPortWait bounds how long Start waits for the engine to report the
	// ephemeral host port it picked.
	hostPortWait = 3 * time.Second
	// cleanupTimeout bounds the removal of a half-made container, which runs
	// even when the caller's context has ended.
	cleanupTimeout = 15 * time.Second
	// failureLogTail is how many log lines a failed Start quotes.
	failureLogTail = 20
)

// Start creates and starts a container for spec, its port published on
// 127.0.0.1 with an ephemeral host port, and returns it with that port. If the
// container cannot be started, or exits before its port is known, it is removed
// and the error quotes the end of its log. A missing image makes an error that
// wraps engine.ErrImageNotFound: Start never pulls.
func (r *Runtime) Start(ctx context.Context, spec engine.ContainerSpec) (engine.Container, error) {
	if spec.Port < 1 || spec.Port > 65535 {
		return engine.Container{}, fmt.Errorf("start container %q: port %d is not a TCP port", spec.Name, spec.Port)
	}
	port, _ := network.PortFrom(uint16(spec.Port), network.TCP)
	created, err := r.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: spec.Name,
		Config: &container.Config{
			Image:        spec.Image,
			Env:          EnvList(spec.Env),
			Labels:       spec.Labels,
			ExposedPorts: network.PortSet{port: {}},
		},
		HostConfig: &container.HostConfig{
			PortBindings:  network.PortMap{port: {{HostIP: loopback, HostPort: ""}}},
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
			Resources: container.Resources{
				NanoCPUs: int64(math.Round(spec.CPUs * 1e9)),
				Memory:   spec.MemoryBytes,
			},
		},
	})
	if cerrdefs.IsNotFound(err) {
		return engine.Container{}, fmt.Errorf("create container %q: %s: %w", spec.Name, spec.Image, engine.ErrImageNotFound)
	}
	if err != nil {
		return engine.Container{}, r.fail(err, "create container %q from %s", spec.Name, spec.Image)
	}
	c, err := r.startCreated(ctx, created.ID, port)
	if err != nil {
		err = r.fail(err, "start container %q (%s)", spec.Name, shortID(created.ID))
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if _, rmErr := r.cli.ContainerRemove(cctx, created.ID, client.ContainerRemoveOptions{Force: true}); rmErr != nil && !cerrdefs.IsNotFound(rmErr) {
			err = errors.Join(err, r.fail(rmErr, "remove container %q after failed start", spec.Name))
		}
		return engine.Container{}, err
	}
	return c, nil
}

// Restart starts a stopped container again and waits for its host port (the
// engine may pick another one). Its log stays with it, the crash included.
func (r *Runtime) Restart(ctx context.Context, id string) (engine.Container, error) {
	res, err := r.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return engine.Container{}, fmt.Errorf("restart container %s: %w", shortID(id), engine.ErrContainerNotFound)
	}
	if err != nil {
		return engine.Container{}, r.fail(err, "restart container %s", shortID(id))
	}
	var port network.Port
	if res.Container.Config != nil {
		for p := range res.Container.Config.ExposedPorts {
			port = p // Clank's containers expose exactly one port
		}
	}
	if port.IsZero() {
		return engine.Container{}, fmt.Errorf("restart container %s: it exposes no port", shortID(id))
	}
	c, err := r.startCreated(ctx, id, port)
	if cerrdefs.IsNotFound(err) {
		return engine.Container{}, fmt.Errorf("restart container %s: %w", shortID(id), engine.ErrContainerNotFound)
	}
	if err != nil {
		return engine.Container{}, r.fail(err, "restart container %s", shortID(id))
	}
	return c, nil
}

// Inspect reports a container as the engine sees it now: running or not,
// its loopback host port, its labels, and how it last ended.
func (r *Runtime) Inspect(ctx context.Context, id string) (engine.Container, error) {
	res, err := r.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return engine.Container{}, fmt.Errorf("inspect container %s: %w", shortID(id), engine.ErrContainerNotFound)
	}
	if err != nil {
		return engine.Container{}, r.fail(err, "inspect container %s", shortID(id))
	}
	c := res.Container
	out := engine.Container{ID: c.ID, Name: strings.TrimPrefix(c.Name, "/")}
	if c.Config != nil {
		out.Labels = c.Config.Labels
		for _, p := range slices.SortedFunc(maps.Keys(c.Config.ExposedPorts), func(a, b network.Port) int { return strings.Compare(a.String(), b.String()) }) {
			if out.HostPort = boundPort(c.NetworkSettings, p); out.HostPort != 0 {
				break
			}
		}
	}
	if c.State != nil {
		out.Running = c.State.Running
		out.ExitCode = c.State.ExitCode
		out.OOMKilled = c.State.OOMKilled
	}
	return out, nil
}

// startCreated starts a created container and waits until the engine reports
// the host port bound to port.
func (r *Runtime) startCreated(ctx context.Context, id string, port network.Port) (engine.Container, error) {
	if _, err := r.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return engine.Container{}, err
	}
	deadline := time.Now().Add(hostPortWait)
	for {
		res, err := r.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return engine.Container{}, fmt.Errorf("inspect: %w", err)
		}
		c := res.Container
		if hostPort := boundPort(c.NetworkSettings, port); hostPort != 0 {
			return engine.Container{
				ID:       c.ID,
				Name:     strings.TrimPrefix(c.Name, "/"),
				HostPort: hostPort,
				Running:  c.State != nil && c.State.Running,
				Labels:   c.Config.Labels,
			}, nil
		}
		if c.State != nil && !c.State.Running && c.State.Status != container.StateCreated {
			return engine.Container{}, fmt.Errorf("container exited with code %d right after start%s",
				c.State.ExitCode, r.logExcerpt(ctx, id))
		}
		if time.Now().After(deadline) {
			return engine.Container{}, fmt.Errorf("the engine reported no host port for %s within %s", port, hostPortWait)
		}
		select {
		case <-ctx.Done():
			return engine.Container{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// boundPort is the host port published for port on 127.0.0.1, 0 if none yet.
func boundPort(ns *container.NetworkSettings, port network.Port) int {
	if ns == nil {
		return 0
	}
	for _, b := range ns.Ports[port] {
		if b.HostIP != loopback {
			continue
		}
		if p, err := strconv.Atoi(b.HostPort); err == nil && p > 0 {
			return p
		}
	}
	return 0
}

// logExcerpt is the end of a container's log, formatted to follow an error
// message, or "" when there is none.
func (r *Runtime) logExcerpt(ctx context.Context, id string) string {
	var buf bytes.Buffer
	if err := r.Logs(ctx, id, engine.LogOptions{Tail: failureLogTail}, &buf); err != nil || buf.Len() == 0 {
		return ""
	}
	return "; its log ends with:\n" + strings.TrimRight(buf.String(), "\n")
}

// Halt stops a container, waiting up to grace for it to exit before killing
// it, and leaves it (and its log) in place. A container that does not exist
// is not an error.
func (r *Runtime) Halt(ctx context.Context, id string, grace time.Duration) error {
	if err := r.halt(ctx, id, grace); err != nil && !cerrdefs.IsNotFound(err) {
		return r.fail(err, "stop container %s", shortID(id))
	}
	return nil
}

func (r *Runtime) halt(ctx context.Context, id string, grace time.Duration) error {
	seconds := 0
	if grace > 0 {
		seconds = int((grace + time.Second - 1) / time.Second)
	}
	_, err := r.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &seconds})
	return err
}

// Stop stops a container, waiting up to grace for it to exit before killing
// it, then removes it. A container that does not exist is not an error.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	err := r.halt(ctx, id, grace)
	if cerrdefs.IsNotFound(err) {
		return nil
	}
	if err != nil && (IsUnreachable(err) || ctx.Err() != nil) {
		return r.fail(err, "stop container %s", shortID(id))
	}
	// Any other stop failure is left to the forced removal, which kills.
	_, rmErr := r.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	switch {
	case rmErr == nil, cerrdefs.IsNotFound(rmErr):
		return nil
	case cerrdefs.IsConflict(rmErr) && strings.Contains(rmErr.Error(), "already in progress"):
		return nil // another Stop is removing it
	case err != nil:
		return errors.Join(r.fail(err, "stop container %s", shortID(id)), r.fail(rmErr, "remove container %s", shortID(id)))
	default:
		return r.fail(rmErr, "remove container %s", shortID(id))
	}
}

// List returns the containers, running or not, that carry all of labels.
func (r *Runtime) List(ctx context.Context, labels map[string]string) ([]engine.Container, error) {
	filters := make(client.Filters)
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		filters.Add("label", k+"="+labels[k])
	}
	res, err := r.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		return nil, r.fail(err, "list containers labelled %v", labels)
	}
	out := make([]engine.Container, 0, len(res.Items))
	for _, s := range res.Items {
		c := engine.Container{
			ID:      s.ID,
			Running: s.State == container.StateRunning,
			Labels:  s.Labels,
		}
		if len(s.Names) > 0 {
			c.Name = strings.TrimPrefix(s.Names[0], "/")
		}
		for _, p := range s.Ports {
			if p.PublicPort != 0 && p.IP == loopback {
				c.HostPort = int(p.PublicPort)
				break
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// Logs copies a container's stdout and stderr to w: the last opts.Tail
// lines, or all of them when it is <= 0. With opts.Follow it keeps copying
// until the container stops or ctx ends; ending ctx is then the normal way
// out and not an error.
func (r *Runtime) Logs(ctx context.Context, id string, opts engine.LogOptions, w io.Writer) error {
	follow := opts.Follow
	info, err := r.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return r.fail(err, "logs of container %s", shortID(id))
	}
	lo := client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Tail: "all", Timestamps: opts.Timestamps}
	if opts.Tail > 0 {
		lo.Tail = strconv.Itoa(opts.Tail)
	}
	if !opts.Since.IsZero() {
		lo.Since = opts.Since.Format(time.RFC3339Nano)
	}
	rc, err := r.cli.ContainerLogs(ctx, id, lo)
	if err != nil {
		return r.fail(err, "logs of container %s", shortID(id))
	}
	defer rc.Close()
	if info.Container.Config != nil && info.Container.Config.Tty {
		_, err = io.Copy(w, rc)
	} else {
		_, err = stdcopy.StdCopy(w, w, rc)
	}
	if err != nil {
		if follow && ctx.Err() != nil {
			return nil
		}
		return r.fail(err, "read logs of container %s", shortID(id))
	}
	return nil
}

// EnvList turns env into KEY=VALUE entries, sorted so that the same map always
// makes the same container config.
func EnvList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// shortID is the 12-character form of a container or image ID, as docker ps shows it.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
