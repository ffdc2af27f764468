package docker

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
)

var (
	_ engine.Runtime = (*Runtime)(nil)
	_ engine.Halter  = (*Runtime)(nil)
)

// ErrUnreachable is matched (errors.Is) by every error that means the Docker
// engine did not answer at all.
var ErrUnreachable = errors.New("Docker engine unreachable")

// Runtime is engine.Runtime on a Docker engine.
type Runtime struct {
	cli *client.Client
}

// New connects to the Docker engine named by the environment (DOCKER_HOST,
// DOCKER_TLS_VERIFY, ...), negotiates the API version and checks that the
// engine answers. The error says plainly when it does not.
func New(ctx context.Context) (*Runtime, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, &unreachableError{host: "DOCKER_HOST", err: err}
	}
	r := &Runtime{cli: cli}
	if err := r.Ping(ctx); err != nil {
		_ = cli.Close()
		return nil, err
	}
	return r, nil
}

// Ping checks that the engine answers, negotiating the API version on the way.
func (r *Runtime) Ping(ctx context.Context) error {
	if _, err := r.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return &unreachableError{host: r.cli.DaemonHost(), err: err}
	}
	return nil
}

// Close releases the client's idle connections.
func (r *Runtime) Close() error {
	return r.cli.Close()
}

// Client is the underlying moby client, for what the Runtime does not cover
// (tests inspect containers with it, and remove images by force).
func (r *Runtime) Client() *client.Client {
	return r.cli
}

// IsUnreachable reports whether err means the Docker engine did not answer.
func IsUnreachable(err error) bool {
	return errors.Is(err, ErrUnreachable) || client.IsErrConnectionFailed(err)
}

// unreachableError is a failure to reach the engine at all.
type unreachableError struct {
	host string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the Docker engine at %s: %v", e.host, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

func (e *unreachableError) Is(target error) bool { return target == ErrUnreachable }

// fail gives err the context of what failed; a connection failure becomes an
// unreachable error, so it reads the same whichever call met it.
func (r *Runtime) fail(err error, format string, args ...any) error {
	if client.IsErrConnectionFailed(err) {
		err = &unreachableError{host: r.cli.DaemonHost(), err: err}
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
