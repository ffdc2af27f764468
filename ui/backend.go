package ui

import (
	"context"
	"io"

	"github.com/clank-dev/clank/api"
)

// Backend is what the dashboard needs from Clank: the engine in-process, or
// the daemon over its socket.
type Backend interface {
	Status(ctx context.Context) (api.Status, error)
	Services(ctx context.Context) ([]api.Service, error)
	// Deployments of a service, newest first, a page at a time: beforeNumber
	// 0 = from the newest.
	Deployments(ctx context.Context, service string, limit, beforeNumber int) ([]api.Deployment, error)
	Deployment(ctx context.Context, id string) (api.Deployment, []api.Event, error)
	// Plan says what an action would change (DryRun semantics) or why it is
	// refused (Plan.Refusal).
	Plan(ctx context.Context, req api.ActionRequest) (api.Plan, error)
	// Act starts a deploy/redeploy/rollback and returns at once with the new
	// deployment; refusals are errors whose text is the reason.
	Act(ctx context.Context, req api.ActionRequest) (api.Deployment, error)
	// Subscribe streams events (deployment status changes carry the
	// deployment) until ctx ends.
	Subscribe(ctx context.Context) (<-chan api.Event, error)
	// Logs copies a deployment's logs (its container's, or the log kept
	// from it) to w; with opts.Follow until ctx ends.
	Logs(ctx context.Context, service, deploymentID string, opts api.LogOptions, w io.Writer) error
	// DeleteService stops a service's containers, takes its routes down and
	// deletes it, keeping its history unless purge (admins only).
	DeleteService(ctx context.Context, name string, purge bool) (api.ServiceDeletion, error)
	// Unfreeze lets git pushes deploy the service again (admins only).
	Unfreeze(ctx context.Context, service, by string) (api.Unfrozen, error)
	// Certificates lists every domain's TLS certificate (none with HTTPS off).
	Certificates(ctx context.Context) ([]api.Certificate, error)
	// Traffic is what each service answered through the edge router lately
	// (service "" = every service), by class, oldest step first.
	Traffic(ctx context.Context, service string) ([]api.Traffic, error)
	// RecheckImages has the daemon check again the images of service's
	// deployments whose last check is older than 30 s (changes come as
	// availability events).
	RecheckImages(ctx context.Context, service string) (int, error)
	// Stats is the live CPU and memory of every service's ACTIVE
	// containers, from the daemon's one sampler.
	Stats(ctx context.Context) ([]api.ServiceStats, error)
}
