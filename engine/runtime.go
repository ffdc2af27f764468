package engine

import (
	"context"
	"errors"
	"io"
	"time"
)

// Labels Clank puts on every container it creates.
const (
	LabelManaged    = "dev.clank.managed"    // "true"
	LabelOwner      = "dev.clank.owner"      // the daemon instance (one per data dir)
	LabelService    = "dev.clank.service"    // service name
	LabelDeployment = "dev.clank.deployment" // deployment id
)

// LabelSchema is the image label that names the data schema an image's code
// expects (a migration id, typically): a rollback or redeploy to a deployment
// whose schema differs from the ACTIVE one's needs an explicit allow.
const LabelSchema = "dev.clank.schema"

// ErrImageNotFound is returned by Runtime.InspectImage when the engine does not
// have the image.
var ErrImageNotFound = errors.New("image not found in the local engine")

// ErrContainerNotFound is returned by Runtime.Inspect and Runtime.Restart for
// a container the engine does not have (any more).
var ErrContainerNotFound = errors.New("container not found in the local engine")

// ImageInfo is what the local engine knows of an image.
type ImageInfo struct {
	ID          string   // "sha256:..." (the config digest)
	RepoDigests []string // "repo@sha256:..." for images pushed or pulled
	Labels      map[string]string
}

// ContainerSpec is one container to create and start.
type ContainerSpec struct {
	Name        string // unique container name
	Image       string // a reference the engine can resolve locally (ref, ref@digest or image ID)
	Env         map[string]string
	Port        int // the container port to publish on 127.0.0.1:<ephemeral>
	CPUs        float64
	MemoryBytes int64
	Labels      map[string]string
}

// Container is a container the runtime created.
type Container struct {
	ID       string
	Name     string
	HostPort int // the ephemeral port on 127.0.0.1
	Running  bool
	Labels   map[string]string
	// How it last ended (Inspect only).
	ExitCode  int
	OOMKilled bool
}

// Runtime event types and the actions Clank follows.
const (
	EventTypeContainer = "container"
	EventTypeImage     = "image"

	ActionStart   = "start"   // container started
	ActionDie     = "die"     // container exited (Labels["exitCode"])
	ActionOOM     = "oom"     // the kernel killed a process of the container for memory
	ActionDestroy = "destroy" // container removed
	ActionHealth  = "health_status"
	ActionDelete  = "delete" // image removed
	ActionUntag   = "untag"  // image lost a tag
)

// attrExitCode is the attribute of a die event that holds the exit code.
const attrExitCode = "exitCode"

// RuntimeEvent is something the engine reports that Clank cares about.
type RuntimeEvent struct {
	Type   string // EventTypeContainer or EventTypeImage
	Action string // one of the Action* constants
	ID     string // container ID or image ID/ref
	// Labels: a container's labels and the event's attributes
	// (Labels["exitCode"] for a die).
	Labels map[string]string
	At     time.Time // when the engine reported it
}

// LogOptions choose what Runtime.Logs copies.
type LogOptions struct {
	Follow     bool      // then wait for more until the container stops or ctx ends
	Tail       int       // the last Tail lines; all when <= 0
	Timestamps bool      // each line begins with its time (RFC 3339, nanoseconds) and a space
	Since      time.Time // only lines written at or after it; all when zero
}

// Runtime runs containers. engine/docker implements it on the Docker engine.
type Runtime interface {
	// Ping checks that the engine answers; the error says why not.
	Ping(ctx context.Context) error
	// InspectImage reports what the local engine has for ref; ErrImageNotFound if nothing.
	InspectImage(ctx context.Context, ref string) (ImageInfo, error)
	// PullImage pulls ref (which may be pinned by digest) and waits for the end.
	PullImage(ctx context.Context, ref string) error
	// RemoveImage removes a local image and its tags (never one a running
	// container uses); ErrImageNotFound if absent.
	RemoveImage(ctx context.Context, ref string) error
	// Start creates and starts a container and returns it with its host port.
	Start(ctx context.Context, spec ContainerSpec) (Container, error)
	// Stop stops (within grace) and removes a container; a missing one is not an error.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Restart starts a stopped container again (its logs stay with it) and
	// returns it with its host port, which may have changed;
	// ErrContainerNotFound if it is gone.
	Restart(ctx context.Context, id string) (Container, error)
	// Inspect reports a container as the engine sees it now, how it last
	// ended included; ErrContainerNotFound if it is gone.
	Inspect(ctx context.Context, id string) (Container, error)
	// List returns the containers whose labels match all of labels (running or not).
	List(ctx context.Context, labels map[string]string) ([]Container, error)
	// Logs copies a container's stdout and stderr to w, as opts say.
	Logs(ctx context.Context, id string, opts LogOptions, w io.Writer) error
	// Events streams the container and image events of the Action*
	// constants until ctx ends. When it returns, the stream is open, or the
	// error channel already holds why not. After an error, call it again.
	Events(ctx context.Context) (<-chan RuntimeEvent, <-chan error)
}
