// Package api is the daemon's wire contract: the JSON types the README
// documents ("-o json"), the HTTP API served on the unix socket, and its client.
package api

import "time"

// HealthCheck is a health check as printed in JSON (durations as Go strings, "1s").
type HealthCheck struct {
	Path     string `json:"path"`
	Interval string `json:"interval"`
	Timeout  string `json:"timeout"`
}

// Service is a service's current configuration.
type Service struct {
	Name          string            `json:"name"`
	Image         string            `json:"image"`
	Port          int               `json:"port"`
	Domains       []string          `json:"domains"`
	EnvKeys       []string          `json:"env_keys"`
	Env           map[string]string `json:"env,omitempty"` // only with --show-env
	HealthCheck   HealthCheck       `json:"health_check"`
	DeployTimeout string            `json:"deploy_timeout"`
	CPUs          float64           `json:"cpus"`
	Memory        int64             `json:"memory"` // bytes, 0 = no limit
	// Constraints and PlacementPrefs place its tasks on Docker Swarm
	// (snapshotted by each deployment; unused on one host).
	Constraints    []string `json:"constraints"`
	PlacementPrefs []string `json:"placement_prefs"`
	// HTTPSRedirect: plain-HTTP requests for its domains that have a certificate
	// get a 308 to HTTPS. Service policy: it applies at once, a rollback keeps it.
	HTTPSRedirect      bool    `json:"https_redirect"`
	ActiveDeploymentID *string `json:"active_deployment_id"`
	// ActiveNumber and ActiveImage are the ACTIVE deployment's number and
	// the image it runs (0 and "" when none is ACTIVE); Image is what the
	// next deploy runs.
	ActiveNumber int    `json:"active_number,omitempty"`
	ActiveImage  string `json:"active_image,omitempty"`
	GitBranch    string `json:"git_branch"`  // pushes to it deploy
	PushBuilds   bool   `json:"push_builds"` // builds go to the Clank registry
	// Frozen: a rollback holds pushes back (they build, and do not deploy)
	// until `clank unfreeze` or an explicit deploy.
	Frozen       bool       `json:"frozen"`
	FrozenBy     string     `json:"frozen_by"`
	FrozenAt     *time.Time `json:"frozen_at"`
	FrozenReason string     `json:"frozen_reason"`
	// HeldImage is what a push built while frozen, not deployed ("" if none).
	HeldImage string `json:"held_image"`
	// Status is a summary for lists: the active deployment's status, or the
	// in-progress one's, or "NONE".
	Status string `json:"status"`
	// The ACTIVE deployment's runtime, restarts and last exit, as on the
	// deployment (runtime null when nothing is ACTIVE).
	Runtime       *string `json:"runtime"`
	RuntimeReason string  `json:"runtime_reason,omitempty"`
	Restarts      int     `json:"restarts"`
	LastExit      *string `json:"last_exit"`
	// Replicas is the service's scale: the count each new deployment runs
	// (a rollback too); HealthyReplicas is how many of its ACTIVE
	// deployment's replicas pass their health check now (0 when none is ACTIVE).
	Replicas        int `json:"replicas"`
	HealthyReplicas int `json:"healthy_replicas"`
	// ActiveReplicas is the ACTIVE deployment's count (0 when none is):
	// the service's own count differs after `service update --replicas`
	// until the next deployment or `clank scale`.
	ActiveReplicas int `json:"active_replicas"`
	// The service's policy after each cutover (never a deployment's).
	Policy
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Policy is how a service's deployments are watched after their cutover.
type Policy struct {
	AutoRollback  bool    `json:"auto_rollback"`
	WatchWindow   string  `json:"watch_window"` // a Go duration, "0s": no watch
	WatchFailures int     `json:"watch_failures"`
	Watch5xx      float64 `json:"watch_5xx"`
	KeepWarm      bool    `json:"keep_warm"`
}

// Deployment is one deployment (an immutable snapshot and its run).
type Deployment struct {
	ID                 string            `json:"id"`
	Number             int               `json:"number"`
	Service            string            `json:"service"`
	Kind               string            `json:"kind"` // deploy | redeploy | rollback
	SourceDeploymentID *string           `json:"source_deployment_id"`
	SourceNumber       int               `json:"source_number,omitempty"` // "rollback of #3"
	Status             string            `json:"status"`
	Image              string            `json:"image"`
	ImageDigest        string            `json:"image_digest"`
	Port               int               `json:"port"`
	HealthCheck        HealthCheck       `json:"health_check"`
	DeployTimeout      string            `json:"deploy_timeout"`
	CPUs               float64           `json:"cpus"`
	Memory             int64             `json:"memory"`
	Constraints        []string          `json:"constraints"`
	PlacementPrefs     []string          `json:"placement_prefs"`
	Domains            []string          `json:"domains"`
	EnvKeys            []string          `json:"env_keys"`
	Env                map[string]string `json:"env,omitempty"` // only with --show-env
	CreatedAt          time.Time         `json:"created_at"`
	ActivatedAt        *time.Time        `json:"activated_at"`
	EndedAt            *time.Time        `json:"ended_at"`
	RollbackCapable    bool              `json:"rollback_capable"`
	ImageAvailability  string            `json:"image_availability"` // available | missing | unknown
	ImageSource        string            `json:"image_source"`       // registry | external | local
	TriggeredBy        string            `json:"triggered_by"`
	FailureReason      string            `json:"failure_reason"`
	Schema             string            `json:"schema"` // the image's dev.clank.schema label, "" if none
	// ContainerID and HostPort are the first replica's; Containers lists
	// every replica's.
	ContainerID string `json:"container_id,omitempty"`
	HostPort    int    `json:"host_port,omitempty"`
	// Replicas is the count it runs with (the service's when it was made;
	// `clank scale` changes the ACTIVE one's); HealthyReplicas how many pass
	// their health check now (ACTIVE only, else 0).
	Replicas        int       `json:"replicas"`
	HealthyReplicas int       `json:"healthy_replicas"`
	Containers      []Replica `json:"containers"`
	// LogsKeptAt is when the daemon last kept the log of one of the
	// deployment's containers as it removed it (null if it kept none):
	// `clank logs` shows the kept log once the container is gone.
	LogsKeptAt *time.Time `json:"logs_kept_at"`

	// ImageAvailabilityVia says where an available image was confirmed:
	// "local" (the local engine holds its digest) or "registry"; "" otherwise.
	ImageAvailabilityVia string `json:"image_availability_via"`

	// After the cutover (docs/architecture.md): what the containers of an ACTIVE
	// deployment do, "healthy" | "unhealthy" | "crashed" | "restarting"
	// (null when not ACTIVE), why (the last answer, how it ended) and since
	// when; restarts and the last exit ("exit 137 (OOM killed)", null if
	// none); the watch window (null if never watched) and what tripped it;
	// warm_until while the deployment is a warm standby.
	Runtime       *string    `json:"runtime"`
	RuntimeReason string     `json:"runtime_reason,omitempty"`
	RuntimeSince  *time.Time `json:"runtime_since,omitempty"`
	Restarts      int        `json:"restarts"`
	LastExit      *string    `json:"last_exit"`
	WatchUntil    *time.Time `json:"watch_until"`
	WatchTripped  string     `json:"watch_tripped,omitempty"`
	WarmUntil     *time.Time `json:"warm_until"`
	// Tasks are the Swarm tasks of an ACTIVE deployment on Docker Swarm
	// (clank serve --runtime swarm), each with its node; none on one host.
	Tasks []Task `json:"tasks,omitempty"`
}

// Task is one Swarm task of a deployment: where it runs and how it does.
type Task struct {
	ID    string `json:"id"`
	Node  string `json:"node"`  // the node's hostname
	Addr  string `json:"addr"`  // the node address:published port the router sends to
	State string `json:"state"` // healthy | unhealthy | restarting (as runtime)
	// Reason is the last failed probe, or what the task is doing.
	Reason string `json:"reason,omitempty"`
}

// Node is one Docker Swarm node (clank nodes).
type Node struct {
	ID           string `json:"id"`
	Hostname     string `json:"hostname"`
	Addr         string `json:"addr"`
	Role         string `json:"role"` // manager | worker
	Leader       bool   `json:"leader"`
	State        string `json:"state"`        // ready | down | unknown | disconnected
	Availability string `json:"availability"` // active | pause | drain
	Tasks        int    `json:"tasks"`        // running tasks of Clank's deployments
}

// Replica is one container of a deployment: its slot (0 .. replicas-1),
// where it answers on 127.0.0.1 and, while the deployment is ACTIVE, what
// it does ("healthy" | "unhealthy" | "crashed" | "restarting"; null otherwise).
type Replica struct {
	Slot          int        `json:"slot"`
	ContainerID   string     `json:"container_id"`
	HostPort      int        `json:"host_port"`
	Runtime       *string    `json:"runtime"`
	RuntimeReason string     `json:"runtime_reason,omitempty"`
	RuntimeSince  *time.Time `json:"runtime_since,omitempty"`
}

// ScaleRequest is the body of POST /v1/services/{name}/scale.
type ScaleRequest struct {
	Replicas int `json:"replicas"`
}

// Scaled answers a scale: the service after it, and its ACTIVE deployment
// (null when nothing is ACTIVE: the next deployment runs the count).
type Scaled struct {
	Service    Service     `json:"service"`
	Deployment *Deployment `json:"deployment"`
}

// Event is one lifecycle step or change, as streamed to subscribers.
type Event struct {
	Seq int64 `json:"seq"`
	// "deployment", "service", "availability", "certificate"; after the
	// cutover: "runtime" (an ACTIVE deployment's runtime changed), "watch" (a
	// watch tripped), "auto_rollback" (the watch started a rollback:
	// Deployment is it), "auto_rollback_refused" (the rules forbid it; the
	// message says why), "docker" (Status "down" or "up"), "traffic" (the
	// router's counts have a new step: GET /v1/traffic).
	Type         string      `json:"type"`
	Service      string      `json:"service"`
	DeploymentID string      `json:"deployment_id,omitempty"`
	Status       string      `json:"status,omitempty"`
	Message      string      `json:"message,omitempty"`
	At           time.Time   `json:"at"`
	Deployment   *Deployment `json:"deployment,omitempty"` // the deployment as it is after the change
}

// Change is one line of a rollback/redeploy plan: what differs from the
// current ACTIVE deployment. Env values are never in it.
type Change struct {
	Field string `json:"field"` // image, env, port, health_check, deploy_timeout, cpus, memory, domains, placement
	Key   string `json:"key,omitempty"`
	From  string `json:"from"`
	To    string `json:"to"`
	Op    string `json:"op,omitempty"` // for env: added | removed | changed
}

// Plan is what a rollback, redeploy or deploy would do, for --dry-run and the
// dashboard's confirmation modal.
type Plan struct {
	Kind    string      `json:"kind"`
	Service string      `json:"service"`
	Target  *Deployment `json:"target,omitempty"` // the deployment rolled back to / redeployed
	Current *Deployment `json:"current,omitempty"`
	Changes []Change    `json:"changes"`
	// SchemaChange is set when the target's schema label differs from the
	// ACTIVE deployment's: the action needs AllowSchemaChange.
	SchemaChange *SchemaChange `json:"schema_change,omitempty"`
	// Refusal is set when the action would be refused; nothing would be created.
	Refusal string `json:"refusal,omitempty"`
}

// SchemaChange is the schema the ACTIVE deployment runs (From) and the one
// a rollback or redeploy would run (To).
type SchemaChange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Status is the daemon's health for the dashboard header.
type Status struct {
	Host   string `json:"host"`
	Docker string `json:"docker"` // "ok" or the error
	// DockerUp and DockerSince: whether the engine's Docker event stream is
	// up, and since when (the "docker" events say when it changes).
	DockerUp    bool       `json:"docker_up"`
	DockerSince *time.Time `json:"docker_since,omitempty"`
	Registry    string     `json:"registry"` // address or "off"
	Router      string     `json:"router"`   // address
	HTTPS       string     `json:"https"`    // the router's HTTPS address or "off"
	SSH         string     `json:"ssh"`      // address or "off"
	Runtime     string     `json:"runtime"`  // "docker" or "swarm"
	Version     string     `json:"version"`
}

// ActionRequest asks for a deploy, redeploy or rollback.
type ActionRequest struct {
	Kind       string `json:"kind"` // deploy | redeploy | rollback
	Service    string `json:"service"`
	Deployment string `json:"deployment,omitempty"` // id or number, for redeploy/rollback
	Image      string `json:"image,omitempty"`      // for deploy: set the service's image first
	DryRun     bool   `json:"dry_run,omitempty"`
	// AllowSchemaChange lets a rollback or redeploy cross a schema change.
	AllowSchemaChange bool `json:"allow_schema_change,omitempty"`
	// GitPush marks a deploy a git push asked for: refused while frozen
	// (an explicit deploy lifts the freeze instead).
	GitPush bool `json:"git_push,omitempty"`
	// TriggeredBy is who the client says asks. The daemon does not believe
	// it: it records who the call is made as (the socket's owner, or the SSH
	// session the call carries); in-process test backends read it.
	TriggeredBy string `json:"triggered_by,omitempty"`
}

// Error is the body of every non-2xx answer.
type Error struct {
	Error string `json:"error"`
	Code  string `json:"code"` // "refused", "not_found", "invalid", "conflict", "unavailable", "internal"
}

// ServiceSpec creates a service (POST) or changes some of its settings
// (PATCH): nil fields stay as they are. Durations are Go strings ("1s"),
// memory a size ("256m").
type ServiceSpec struct {
	Name           string            `json:"name,omitempty"`
	Image          *string           `json:"image,omitempty"`
	Port           *int              `json:"port,omitempty"`
	Env            map[string]string `json:"env,omitempty"`
	UnsetEnv       []string          `json:"unset_env,omitempty"`
	Domains        []string          `json:"domains,omitempty"`
	HealthPath     *string           `json:"health_path,omitempty"`
	HealthInterval *string           `json:"health_interval,omitempty"`
	HealthTimeout  *string           `json:"health_timeout,omitempty"`
	DeployTimeout  *string           `json:"deploy_timeout,omitempty"`
	CPUs           *float64          `json:"cpus,omitempty"`
	Memory         *string           `json:"memory,omitempty"`
	Constraints    *[]string         `json:"constraints,omitempty"`     // replaces them; [] clears
	PlacementPrefs *[]string         `json:"placement_prefs,omitempty"` // replaces them; [] clears
	GitBranch      *string           `json:"git_branch,omitempty"`
	PushBuilds     *bool             `json:"push_builds,omitempty"`
	HTTPSRedirect  *bool             `json:"https_redirect,omitempty"`
	AutoRollback   *bool             `json:"auto_rollback,omitempty"`
	WatchWindow    *string           `json:"watch_window,omitempty"`
	WatchFailures  *int              `json:"watch_failures,omitempty"`
	Watch5xx       *float64          `json:"watch_5xx,omitempty"`
	KeepWarm       *bool             `json:"keep_warm,omitempty"`
	Replicas       *int              `json:"replicas,omitempty"`
}

// Notification is the JSON body `clank serve --notify URL` POSTs to URL.
type Notification struct {
	// Event: "deployment.active", "deployment.failed", "watch.tripped",
	// "rollback.automatic", "rollback.refused" or "container.crashed".
	Event   string    `json:"event"`
	Service string    `json:"service"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
	Host    string    `json:"host"` // the daemon's host name
	// Deployment is the deployment concerned, as `-o json` prints it
	// (never its env values).
	Deployment *Deployment `json:"deployment,omitempty"`
}

// ServiceStats is the live use of a service's ACTIVE containers (GET
// /v1/stats): sampled by the daemon every few seconds while someone asks.
// CPU is in percent of one CPU (200 = two busy CPUs); it is null until a
// container has been read twice. Memory leaves the page cache out.
type ServiceStats struct {
	Service     string           `json:"service"`
	Deployment  string           `json:"deployment_id"`
	Number      int              `json:"number"`
	CPUPercent  *float64         `json:"cpu_percent"`
	MemoryBytes uint64           `json:"memory_bytes"`
	MemoryLimit uint64           `json:"memory_limit_bytes"`
	Containers  []ContainerStats `json:"containers"`
}

// ContainerStats is one container of a ServiceStats.
type ContainerStats struct {
	ContainerID string    `json:"container_id"`
	Slot        int       `json:"slot"` // the replica's, as in Deployment.Containers
	CPUPercent  *float64  `json:"cpu_percent"`
	MemoryBytes uint64    `json:"memory_bytes"`
	MemoryLimit uint64    `json:"memory_limit_bytes"`
	SampledAt   time.Time `json:"sampled_at"`
}

// Traffic is what a service's ACTIVE containers answered through the edge
// router, by class, in steps of Step seconds, oldest first (GET /v1/traffic).
type Traffic struct {
	Service string         `json:"service"`
	Step    float64        `json:"step_seconds"`
	Points  []TrafficPoint `json:"points"`
}

// TrafficPoint is one step: answers by class (1xx ... 5xx) ending at At.
type TrafficPoint struct {
	At   time.Time `json:"at"`
	C1xx uint64    `json:"1xx"`
	C2xx uint64    `json:"2xx"`
	C3xx uint64    `json:"3xx"`
	C4xx uint64    `json:"4xx"`
	C5xx uint64    `json:"5xx"`
}

// ImagesChecked answers POST /v1/services/{name}/images/check: how many of
// the service's images were checked again (those checked recently are not).
type ImagesChecked struct {
	Service string `json:"service"`
	Checked int    `json:"checked"`
}

// ServiceDeletion says what `clank service delete` did.
type ServiceDeletion struct {
	Service     string        `json:"service"`
	Purged      bool          `json:"purged"`
	Containers  int           `json:"containers"`  // stopped and removed
	Deployments int           `json:"deployments"` // kept as history (0 when purged)
	Images      []PrunedImage `json:"images"`      // with purge: local images removed, or kept with why
}

// UnfreezeRequest lifts a service's freeze. TriggeredBy is not believed:
// the daemon records who the call is made as.
type UnfreezeRequest struct {
	TriggeredBy string `json:"triggered_by,omitempty"`
}

// Unfrozen answers an unfreeze: the service, and whether it was frozen.
type Unfrozen struct {
	Service   Service `json:"service"`
	WasFrozen bool    `json:"was_frozen"`
}

// DeploymentDetail is one deployment with its lifecycle events.
type DeploymentDetail struct {
	Deployment Deployment `json:"deployment"`
	Events     []Event    `json:"events"`
}

// PrunedImage is one local image `clank prune` removed, or kept with Error.
type PrunedImage struct {
	Service     string `json:"service"`
	Deployment  int    `json:"deployment"`
	Image       string `json:"image"`
	ImageDigest string `json:"image_digest"`
	ImageSource string `json:"image_source"`
	Error       string `json:"error,omitempty"`
}

// GCResult says what `clank registry gc` did.
type GCResult struct {
	ManifestsRemoved []string `json:"manifests_removed"`
	ManifestsKept    int      `json:"manifests_kept"`
	BlobsRemoved     int      `json:"blobs_removed"`
	Seconds          float64  `json:"seconds"`
}

// RegistryCredential is what pushes to and deletes from the Clank registry
// need (`clank registry login` hands it to the Docker CLI). Registry is the
// host:port under which this machine reaches the registry.
type RegistryCredential struct {
	Registry string `json:"registry"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// EventCertificate is the type of an Event about a domain's certificate
// (obtained, renewed, or why it could not be).
const EventCertificate = "certificate"

// Certificate is one domain's TLS certificate, as `clank certs` lists it.
type Certificate struct {
	Domain    string     `json:"domain"`
	Service   string     `json:"service"`
	Status    string     `json:"status"` // obtaining | valid | failed | expired
	Issuer    string     `json:"issuer"` // the issuing CA, "" before the first certificate
	NotAfter  *time.Time `json:"not_after"`
	LastError string     `json:"last_error"` // "" since the last success
}
