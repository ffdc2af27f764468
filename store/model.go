package store

import (
	"errors"
	"time"
)

// Status is a deployment's place in the lifecycle.
type Status string

// The lifecycle (docs/architecture.md): DEPLOYING -> HEALTH_CHECKING -> ACTIVE, then
// DRAINING -> INACTIVE when replaced; FAILED or CANCELLED end a deployment
// that never became ACTIVE.
const (
	StatusDeploying      Status = "DEPLOYING"
	StatusHealthChecking Status = "HEALTH_CHECKING"
	StatusActive         Status = "ACTIVE"
	StatusDraining       Status = "DRAINING"
	StatusInactive       Status = "INACTIVE"
	StatusFailed         Status = "FAILED"
	StatusCancelled      Status = "CANCELLED"
)

// InProgress reports whether a deployment in this status is still on its way
// to ACTIVE (or to FAILED).
func (s Status) InProgress() bool {
	return s == StatusDeploying || s == StatusHealthChecking
}

// Kind says how a deployment came to be.
type Kind string

const (
	KindDeploy   Kind = "deploy"
	KindRedeploy Kind = "redeploy"
	KindRollback Kind = "rollback"
)

// HealthCheck is how the engine decides that a container is ready.
type HealthCheck struct {
	Path     string        `json:"path"`
	Interval time.Duration `json:"interval"`
	Timeout  time.Duration `json:"timeout"`
}

// Config is everything a deployment runs with. A service holds its current
// Config; a deployment holds an immutable copy (its snapshot).
type Config struct {
	Image         string            `json:"image"`
	Port          int               `json:"port"`
	Env           map[string]string `json:"env"`
	Domains       []string          `json:"domains"`
	Health        HealthCheck       `json:"health_check"`
	DeployTimeout time.Duration     `json:"deploy_timeout"`
	CPUs          float64           `json:"cpus"`
	MemoryBytes   int64             `json:"memory"`
	// Constraints and PlacementPrefs place a deployment's tasks on Docker
	// Swarm ("node.role==worker", "spread=node.labels.zone"); ignored on one host.
	Constraints    []string `json:"constraints,omitempty"`
	PlacementPrefs []string `json:"placement_prefs,omitempty"`
}

// Policy is how the engine watches a service's deployments after each
// cutover (docs/architecture.md, "After the cutover"). It belongs to the service, never
// to a deployment's snapshot: a rollback does not restore an older policy,
// and each deployment is watched with the service's policy at its cutover.
type Policy struct {
	AutoRollback  bool          `json:"auto_rollback"`  // roll back when the watch trips
	WatchWindow   time.Duration `json:"watch_window"`   // how long after a cutover; 0: no watch, no warm standby
	WatchFailures int           `json:"watch_failures"` // consecutive failed probes that trip it
	Watch5xx      float64       `json:"watch_5xx"`      // the ratio of 5xx answers that trips it (over >= Watch5xxMin)
	KeepWarm      bool          `json:"keep_warm"`      // keep the replaced deployment's container during the window
}

// DefaultPolicy is the policy of a service that sets none (migration 0002
// gives it to the services made before it).
func DefaultPolicy() Policy {
	return Policy{WatchWindow: 5 * time.Minute, WatchFailures: 3, Watch5xx: 0.5, KeepWarm: true}
}

// Service is a named application and its current configuration.
type Service struct {
	Name               string
	Config             Config
	Git                GitSettings
	Policy             Policy
	ActiveDeploymentID string // "" when nothing is ACTIVE
	// Freeze is set while a rollback holds pushes back (nil otherwise).
	Freeze *Freeze
	// HeldImage is the image a push built while the service was frozen:
	// kept, not deployed ("" when none is waiting).
	HeldImage string
	// HTTPSRedirect: plain-HTTP requests for the service's domains that have a
	// certificate get a redirect to HTTPS. A policy of the service, never in a
	// deployment's snapshot.
	HTTPSRedirect bool
	// Replicas is the service's scale: how many containers each new
	// deployment runs (at least 1). Like Policy it is never part of a
	// snapshot: a rollback or redeploy runs at the service's current count.
	Replicas  int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DefaultGitBranch is the branch whose pushes deploy a service unless it
// says otherwise.
const DefaultGitBranch = "main"

// GitSettings say how a git push deploys a service. Like its name, they are
// the service's, not a deployment's: a rollback never restores them.
type GitSettings struct {
	Branch     string // pushes to this branch deploy (DefaultGitBranch if "")
	PushBuilds bool   // push built images to the Clank registry
}

// Freeze is why pushes do not deploy a service: a rollback happened.
type Freeze struct {
	By     string // who rolled back (triggered_by)
	At     time.Time
	Reason string
}

// Image sources (image_source in JSON): the one home of these values.
const (
	SourceRegistry = "registry"
	SourceExternal = "external"
	SourceLocal    = "local"
)

// Deployment is one immutable snapshot of a service's configuration and the
// state of its run. Only the run fields (from Status on) change after creation.
type Deployment struct {
	ID                 string
	Number             int // per service, from 1
	Service            string
	Kind               Kind
	SourceDeploymentID string // for redeploy and rollback
	Config             Config // the snapshot
	ImageDigest        string // the digest pinned at deploy time
	ImageSource        string // SourceRegistry, SourceExternal or SourceLocal
	TriggeredBy        string
	// Schema is the image's dev.clank.schema label, recorded once the image
	// is in the local engine; "" when it has none (or is not known yet).
	Schema string

	Status        Status
	FailureReason string
	// Replicas is how many containers it runs with: the service's count when
	// it was created, changed in place by a scale while it is ACTIVE.
	Replicas int
	// Containers are its replicas' containers, by slot; a slot that has no
	// container (not started yet, or scaled away) has no entry.
	Containers []Replica
	// ContainerID and HostPort are the first replica's (lowest slot), for
	// logs and one-line displays; "" and 0 when it has none.
	ContainerID string
	HostPort    int
	CreatedAt   time.Time
	ActivatedAt *time.Time // first time ACTIVE; nil if never
	EndedAt     *time.Time // when it left ACTIVE or failed/was cancelled

	Restarts     int    // crashed containers started again while ACTIVE
	LastExit     string // how the container last ended: "exit 137 (OOM killed)"
	WatchUntil   *time.Time
	WatchPolicy  Policy     // the service's policy at the cutover (zero if never watched)
	WatchTripped string     // what tripped the watch, "" if nothing did
	WarmUntil    *time.Time // a warm standby until then (INACTIVE, container running)
}

// Replica is one container of a deployment.
type Replica struct {
	Slot        int // 0 .. Replicas-1
	ContainerID string
	HostPort    int // on 127.0.0.1
	// Label is the dev.clank.deployment label of the container: "" for the
	// deployment's own id; another deployment's id when the deployment
	// adopted that one's warm standby (Docker cannot relabel a container).
	Label string
}

// ContainerDeployment is the dev.clank.deployment label replica r of d carries.
func (d Deployment) ContainerDeployment(r Replica) string {
	if r.Label != "" {
		return r.Label
	}
	return d.ID
}

// Replica returns d's container in slot (ok false when the slot has none).
func (d Deployment) Replica(slot int) (Replica, bool) {
	for _, r := range d.Containers {
		if r.Slot == slot {
			return r, true
		}
	}
	return Replica{}, false
}

// Event is one step in a deployment's lifecycle, kept in order.
type Event struct {
	ID           int64
	DeploymentID string
	Service      string
	Status       Status
	Message      string
	At           time.Time
}

// Errors callers test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrDomainTaken: a domain is already assigned to another service.
	ErrDomainTaken = errors.New("domain is used by another service")
)

// DomainTakenError says which service owns the domain a request wanted. It
// matches ErrDomainTaken with errors.Is.
type DomainTakenError struct {
	Domain  string
	Service string // the owner
}

func (e *DomainTakenError) Error() string {
	return "domain " + e.Domain + " is used by service " + e.Service
}

// Unwrap lets errors.Is(err, ErrDomainTaken) match.
func (e *DomainTakenError) Unwrap() error { return ErrDomainTaken }

// Availability states of an image (image_availability in JSON): the one
// home of these values.
const (
	AvailabilityAvailable = "available"
	AvailabilityMissing   = "missing"
	AvailabilityUnknown   = "unknown"
)

// Where an available image was confirmed (image_availability_via): the
// local engine holds its exact digest, or a registry has it.
const (
	ViaRegistry = "registry"
	ViaLocal    = "local"
)

// Availability is the last known answer to "can this image still be pulled
// or run?", keyed by digest or reference.
type Availability struct {
	Key       string
	State     string // AvailabilityAvailable, AvailabilityMissing or AvailabilityUnknown
	Via       string // ViaRegistry or ViaLocal when available, else ""
	Reason    string
	CheckedAt time.Time
}
