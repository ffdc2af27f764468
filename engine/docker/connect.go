package docker

import (
	"context"

	"github.com/moby/moby/client"
)

// Connect is New for a daemon that must outlive the Docker engine: when the
// engine does not answer, it still returns a Runtime (with the error), whose
// calls work again, with the API version negotiated, once the engine is back.
// Only a malformed Docker environment gives no Runtime.
func Connect(ctx context.Context) (*Runtime, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, &unreachableError{host: "DOCKER_HOST", err: err}
	}
	r := &Runtime{cli: cli}
	return r, r.Ping(ctx)
}
