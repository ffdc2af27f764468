package daemon

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	dockerregistry "github.com/moby/moby/api/types/registry"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/swarm"
	"github.com/clank-dev/clank/registry"
)

// Runtimes the daemon runs deployments on (--runtime, CLANK_RUNTIME).
const (
	RuntimeDocker = "docker" // containers on this Docker engine
	RuntimeSwarm  = "swarm"  // Swarm services, this engine being a Swarm manager (docs/scale-out.md)
)

// runtime is the engine.Runtime cfg.Runtime asks for: the Docker runtime, or
// the Swarm runtime on it, refused when the engine is not a Swarm manager.
func (d *Daemon) runtime(ctx context.Context) (engine.Runtime, error) {
	switch d.cfg.Runtime {
	case "", RuntimeDocker:
		return d.Runtime, nil
	case RuntimeSwarm:
		if d.dockerErr != nil {
			return nil, fmt.Errorf("--runtime swarm: cannot ask the Docker engine whether it is a Swarm manager: %w", d.dockerErr)
		}
		rt, err := swarm.New(ctx, d.Runtime)
		if err != nil {
			return nil, fmt.Errorf("--runtime swarm: %w", err)
		}
		return rt, nil
	}
	return nil, fmt.Errorf("unknown runtime %q: want %s or %s", d.cfg.Runtime, RuntimeDocker, RuntimeSwarm)
}

// swarmRegistryAuth is the X-Registry-Auth with which the Swarm's nodes pull
// image: the Clank registry's credential for its images (the nodes are not
// on its loopback, where pulls are anonymous), else what the daemon user's
// Docker configuration holds for the image's registry ("" for none).
func (d *Daemon) swarmRegistryAuth(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return ""
	}
	host := reference.Domain(named)
	var ac dockerregistry.AuthConfig
	if d.registry != nil && registry.IsClankRegistry(host, d.registryAddr) {
		c := d.registry.Credential()
		ac = dockerregistry.AuthConfig{Username: c.Username, Password: c.Password, ServerAddress: host}
	} else {
		reg, err := name.NewRegistry(host)
		if err != nil {
			return ""
		}
		a, err := authn.DefaultKeychain.Resolve(reg)
		if err != nil || a == authn.Anonymous {
			return ""
		}
		cfg, err := a.Authorization()
		if err != nil || (cfg.Username == "" && cfg.IdentityToken == "" && cfg.RegistryToken == "") {
			return ""
		}
		ac = dockerregistry.AuthConfig{Username: cfg.Username, Password: cfg.Password, IdentityToken: cfg.IdentityToken,
			RegistryToken: cfg.RegistryToken, ServerAddress: host}
	}
	b, err := json.Marshal(ac)
	if err != nil {
		return ""
	}
	return base64.URLEncoding.EncodeToString(b)
}

// listNodes is GET /v1/nodes: the Swarm's nodes with Clank's tasks on each
// (none on the Docker runtime).
func (d *Daemon) listNodes(r *http.Request) (int, any, error) {
	nodes, err := d.Engine.Nodes(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := make([]api.Node, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, api.Node{ID: n.ID, Hostname: n.Hostname, Addr: n.Addr, Role: n.Role, Leader: n.Leader,
			State: n.State, Availability: n.Availability, Tasks: n.Tasks})
	}
	return http.StatusOK, out, nil
}
