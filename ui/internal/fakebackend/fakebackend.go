// Package fakebackend is an in-memory ui.Backend for the dashboard's pure
// rendering tests and benchmarks (layout, widths, paging through 100,000
// deployments, fan-out speed): a deployment history of any length (generated
// on demand, so 100,000 deployments cost no memory), plans, actions and a
// live event stream that tests drive by hand. It plans and refuses with the
// engine's own functions, so it cannot say what the daemon would not; the
// dashboard's behaviour is tested against a real daemon (realdaemon).
package fakebackend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/store"
)

// Epoch is the fake's clock: deployment n of a generated history was created
// n minutes after it. Tests pin the dashboard's Now to a time after it.
var Epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// ErrNotFound is returned for unknown services and deployments.
var ErrNotFound = errors.New("not found")

// Backend is the fake. The zero value is not usable: call New.
type Backend struct {
	mu       sync.Mutex
	status   api.Status
	certs    []api.Certificate
	traffic  map[string]api.Traffic
	stats    []api.ServiceStats
	services []api.Service
	hist     map[string]*history
	byID     map[string]ref
	events   map[string][]api.Event
	subs     map[int]chan api.Event
	nextSub  int
	seq      int64
	now      func() time.Time
	logLines []string      // the log every deployment has (WriteLog)
	logWake  chan struct{} // closed when lines are written

	// DeploymentsCalls counts Deployments calls: a live update must not add any.
	DeploymentsCalls atomic.Int64
	// Dropped counts events a slow subscriber missed.
	Dropped atomic.Int64
	// Rechecks counts RecheckImages calls.
	Rechecks atomic.Int64
}

// history is a service's deployments 1..n: generated unless stored.
type history struct {
	n         int
	activeGen int // the generated deployment that is ACTIVE
	stored    map[int]*api.Deployment
}

type ref struct {
	service string
	number  int
}

// New returns an empty fake whose Status reports a healthy daemon.
func New() *Backend {
	return &Backend{
		status: api.Status{Host: "demo-host", Docker: "ok", Registry: "127.0.0.1:5000",
			Router: "127.0.0.1:8080", SSH: "127.0.0.1:2222", Version: "test"},
		hist:    map[string]*history{},
		byID:    map[string]ref{},
		events:  map[string][]api.Event{},
		subs:    map[int]chan api.Event{},
		now:     time.Now,
		logWake: make(chan struct{}),
	}
}

// AddService adds a service with no deployments.
func (b *Backend) AddService(s api.Service) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.Status == "" {
		s.Status = "NONE"
	}
	b.services = append(b.services, s)
	b.hist[s.Name] = &history{stored: map[int]*api.Deployment{}}
}

// AddHistory appends n generated deployments to a service: all INACTIVE and
// rollback capable, the newest one ACTIVE.
func (b *Backend) AddHistory(service string, n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.hist[service]
	h.n += n
	h.activeGen = h.n
	b.setActiveLocked(service, h.n)
}

func (b *Backend) addLocked(d api.Deployment) api.Deployment {
	h := b.hist[d.Service]
	h.n++
	d.Number = h.n
	if d.ID == "" {
		d.ID = idOf(d.Service, d.Number)
	}
	if d.Kind == "" {
		d.Kind = "deploy"
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = Epoch.Add(time.Duration(d.Number) * time.Minute)
	}
	cp := d
	h.stored[d.Number] = &cp
	b.byID[d.ID] = ref{d.Service, d.Number}
	if d.Status == "ACTIVE" {
		b.setActiveLocked(d.Service, d.Number)
	}
	return d
}

func (b *Backend) setActiveLocked(service string, number int) {
	for i := range b.services {
		if b.services[i].Name == service {
			id := idOf(service, number)
			b.services[i].ActiveDeploymentID = &id
			b.services[i].Status = "ACTIVE"
			b.services[i].ActiveNumber = number
			b.services[i].ActiveImage = b.getLocked(service, number).Image
		}
	}
}

func idOf(service string, number int) string { return service + "-" + strconv.Itoa(number) }

// get returns deployment n of a service (generated or stored).
func (b *Backend) getLocked(service string, n int) api.Deployment {
	h := b.hist[service]
	if d, ok := h.stored[n]; ok {
		return *d
	}
	status := "INACTIVE"
	if n == h.activeGen {
		status = "ACTIVE"
	}
	created := Epoch.Add(time.Duration(n) * time.Minute)
	activated := created.Add(20 * time.Second)
	return api.Deployment{
		ID: idOf(service, n), Number: n, Service: service, Kind: "deploy", Status: status,
		Image: fmt.Sprintf("registry.local/%s:v1.%d", service, n), ImageDigest: "sha256:" + strings.Repeat("ab", 32),
		Port: 8080, HealthCheck: api.HealthCheck{Path: "/healthz", Interval: "1s", Timeout: "5s"},
		DeployTimeout: "60s", Domains: []string{service + ".localhost"}, EnvKeys: []string{"API_KEY", "DB_URL"},
		CreatedAt: created, ActivatedAt: &activated, RollbackCapable: true,
		ImageAvailability: "available", ImageSource: "registry", TriggeredBy: "alice (SHA256:Zm9vYmFy)",
	}
}

// Subscribers is how many event subscriptions are open.
func (b *Backend) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// SetStatus moves a deployment to a status (with a message and, for FAILED,
// a reason), as the engine would, and publishes the change.
func (b *Backend) SetStatus(service string, number int, status, message string) api.Deployment {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.getLocked(service, number)
	d.Status = status
	if status == "FAILED" {
		d.FailureReason = message
	}
	var demoted *api.Deployment
	if status == "ACTIVE" {
		now := b.now()
		d.ActivatedAt = &now
		d.RollbackCapable = d.ImageAvailability == "available"
		if prev := b.activeLocked(service); prev > 0 && prev != number {
			old := b.getLocked(service, prev)
			old.Status = "INACTIVE"
			old.EndedAt = &now
			b.hist[service].stored[prev] = &old
			demoted = &old
		}
		b.setActiveLocked(service, number)
	}
	cp := d
	b.hist[service].stored[number] = &cp
	b.byID[d.ID] = ref{service, number}
	b.publishLocked(api.Event{Type: "deployment", Service: service, DeploymentID: d.ID, Status: status,
		Message: message, Deployment: &cp})
	if demoted != nil {
		b.publishLocked(api.Event{Type: "deployment", Service: service, DeploymentID: demoted.ID,
			Status: "INACTIVE", Message: "replaced by #" + strconv.Itoa(number), Deployment: demoted})
	}
	return d
}

// activeLocked is the number of the service's ACTIVE deployment, or 0.
func (b *Backend) activeLocked(service string) int {
	for n := b.hist[service].n; n >= 1; n-- {
		if b.getLocked(service, n).Status == "ACTIVE" {
			return n
		}
	}
	return 0
}

func (b *Backend) publishLocked(ev api.Event) {
	b.seq++
	ev.Seq = b.seq
	if ev.At.IsZero() {
		ev.At = Epoch.Add(time.Duration(b.seq) * time.Second)
	}
	if ev.DeploymentID != "" {
		b.events[ev.DeploymentID] = append(b.events[ev.DeploymentID], ev)
	}
	for _, ch := range b.subs {
		select {
		case ch <- ev:
		default:
			b.Dropped.Add(1)
		}
	}
}

// SetCertificates sets what Certificates answers.
func (b *Backend) SetCertificates(certs []api.Certificate) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.certs = slices.Clone(certs)
}

// Certificates implements ui.Backend.
func (b *Backend) Certificates(context.Context) ([]api.Certificate, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.certs), nil
}

// SetTraffic sets what Traffic answers for a service.
func (b *Backend) SetTraffic(t api.Traffic) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.traffic == nil {
		b.traffic = map[string]api.Traffic{}
	}
	b.traffic[t.Service] = t
}

// Traffic implements ui.Backend.
func (b *Backend) Traffic(_ context.Context, service string) ([]api.Traffic, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []api.Traffic
	for _, s := range b.services {
		if t, ok := b.traffic[s.Name]; ok && (service == "" || service == s.Name) {
			out = append(out, t)
		}
	}
	return out, nil
}

// SetStats sets what Stats answers.
func (b *Backend) SetStats(s []api.ServiceStats) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.stats = s
}

// Stats implements ui.Backend.
func (b *Backend) Stats(context.Context) ([]api.ServiceStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]api.ServiceStats(nil), b.stats...), nil
}

// RecheckImages implements ui.Backend: it counts the call.
func (b *Backend) RecheckImages(context.Context, string) (int, error) {
	b.Rechecks.Add(1)
	return 0, nil
}

// Status implements ui.Backend.
func (b *Backend) Status(context.Context) (api.Status, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status, nil
}

// Services implements ui.Backend.
func (b *Backend) Services(context.Context) ([]api.Service, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.services), nil
}

// Deployments implements ui.Backend.
func (b *Backend) Deployments(_ context.Context, service string, limit, before int) ([]api.Deployment, error) {
	b.DeploymentsCalls.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.hist[service]
	if !ok {
		return nil, fmt.Errorf("service %s: %w", service, ErrNotFound)
	}
	from := h.n
	if before > 0 {
		from = min(before-1, h.n)
	}
	out := make([]api.Deployment, 0, min(limit, max(from, 0)))
	for n := from; n >= 1 && len(out) < limit; n-- {
		out = append(out, b.getLocked(service, n))
	}
	return out, nil
}

// Deployment implements ui.Backend.
func (b *Backend) Deployment(_ context.Context, id string) (api.Deployment, []api.Event, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.refLocked(id)
	if !ok {
		return api.Deployment{}, nil, fmt.Errorf("deployment %s: %w", id, ErrNotFound)
	}
	return b.getLocked(r.service, r.number), slices.Clone(b.events[id]), nil
}

// refLocked finds a deployment by id: stored ones by map, generated ones by
// their "<service>-<number>" form.
func (b *Backend) refLocked(id string) (ref, bool) {
	if r, ok := b.byID[id]; ok {
		return r, true
	}
	i := strings.LastIndexByte(id, '-')
	if i < 0 {
		return ref{}, false
	}
	n, err := strconv.Atoi(id[i+1:])
	h := b.hist[id[:i]]
	if err != nil || h == nil || n < 1 || n > h.n {
		return ref{}, false
	}
	return ref{id[:i], n}, true
}

// Plan implements ui.Backend. The fake plans with the engine's own rules
// and words (engine.Diff, engine.RollbackRefusal, engine.ImageGone,
// engine.InProgress), so that what it shows is what the daemon would say.
func (b *Backend) Plan(_ context.Context, req api.ActionRequest) (api.Plan, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.planLocked(req)
}

func (b *Backend) planLocked(req api.ActionRequest) (api.Plan, error) {
	svc := b.serviceLocked(req.Service)
	if svc == nil {
		return api.Plan{}, fmt.Errorf("service %s: %w", req.Service, ErrNotFound)
	}
	p := api.Plan{Kind: req.Kind, Service: req.Service}
	active := b.activeLocked(req.Service)
	ssvc := store.Service{Name: svc.Name, Config: configOf(svc.Image, svc.Port, svc.HealthCheck, svc.DeployTimeout,
		svc.CPUs, svc.Memory, svc.Domains, svc.EnvKeys, svc.Env)}
	if active > 0 {
		cur := b.getLocked(req.Service, active)
		p.Current = &cur
		ssvc.ActiveDeploymentID = cur.ID
	}
	to, toDigest := ssvc.Config, ""
	switch {
	case req.Kind == "deploy":
		if req.Image != "" {
			to.Image = req.Image
		}
	case req.Deployment != "":
		r, ok := b.refLocked(req.Deployment)
		if !ok || r.service != req.Service {
			return api.Plan{}, fmt.Errorf("deployment %s: %w", req.Deployment, ErrNotFound)
		}
		t := b.getLocked(req.Service, r.number)
		p.Target = &t
	case req.Kind == "rollback":
		if active <= 1 {
			p.Refusal = engine.NoRollbackTarget(req.Service).Error()
			return p, nil
		}
		t := b.getLocked(req.Service, active-1)
		p.Target = &t
	}
	if t := p.Target; t != nil {
		target := storeDeployment(t)
		if req.Kind == "rollback" {
			if err := engine.RollbackRefusal(ssvc, target); err != nil {
				p.Refusal = err.Error()
				return p, nil
			}
			to = target.Config
		} else {
			to.Image = t.Image
		}
		toDigest = t.ImageDigest
		if t.ImageAvailability == "missing" {
			p.Refusal = engine.ImageGone(store.Kind(req.Kind), target, engine.RemovedLocally(t.Image, t.ImageDigest)).Error()
			return p, nil
		}
	}
	if busy := b.inProgressLocked(req.Service); busy != nil {
		d := storeDeployment(busy)
		p.Refusal = engine.InProgress(req.Service, &d).Error()
	}
	if c := p.Current; c != nil {
		for _, ch := range engine.Diff(storeDeployment(c).Config, to, c.ImageDigest, toDigest) {
			p.Changes = append(p.Changes, api.Change{Field: ch.Field, Key: ch.Key, Op: ch.Op, From: ch.From, To: ch.To})
		}
	}
	return p, nil
}

func (b *Backend) serviceLocked(name string) *api.Service {
	for i := range b.services {
		if b.services[i].Name == name {
			return &b.services[i]
		}
	}
	return nil
}

// inProgressLocked is the service's deployment in progress, if any (only
// stored deployments move).
func (b *Backend) inProgressLocked(service string) *api.Deployment {
	for _, d := range b.hist[service].stored {
		if d.Status == "DEPLOYING" || d.Status == "HEALTH_CHECKING" {
			return d
		}
	}
	return nil
}

// storeDeployment is the engine's view of a wire deployment: what its rules
// and its diff read.
func storeDeployment(d *api.Deployment) store.Deployment {
	return store.Deployment{
		ID: d.ID, Service: d.Service, Number: d.Number, Kind: store.Kind(d.Kind), Status: store.Status(d.Status),
		Config:      configOf(d.Image, d.Port, d.HealthCheck, d.DeployTimeout, d.CPUs, d.Memory, d.Domains, d.EnvKeys, d.Env),
		ImageDigest: d.ImageDigest, ImageSource: d.ImageSource, ActivatedAt: d.ActivatedAt, FailureReason: d.FailureReason,
	}
}

// configOf builds a snapshot from wire fields. Env values the fake was not
// given are empty.
func configOf(image string, port int, hc api.HealthCheck, deployTimeout string, cpus float64, memory int64,
	domains, envKeys []string, env map[string]string) store.Config {
	dur := func(s string) time.Duration { d, _ := time.ParseDuration(s); return d }
	cfg := store.Config{Image: image, Port: port, Env: map[string]string{}, Domains: domains, CPUs: cpus, MemoryBytes: memory,
		Health: store.HealthCheck{Path: hc.Path, Interval: dur(hc.Interval), Timeout: dur(hc.Timeout)}, DeployTimeout: dur(deployTimeout)}
	for _, k := range envKeys {
		cfg.Env[k] = env[k]
	}
	return cfg
}

// Act implements ui.Backend: a refused plan is an error; otherwise the
// service's next deployment is created DEPLOYING and published. Tests move it
// on with SetStatus.
func (b *Backend) Act(_ context.Context, req api.ActionRequest) (api.Deployment, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p, err := b.planLocked(req)
	if err != nil {
		return api.Deployment{}, err
	}
	if p.Refusal != "" {
		return api.Deployment{}, errors.New(p.Refusal)
	}
	d := api.Deployment{Service: req.Service, Kind: req.Kind, Status: "DEPLOYING", TriggeredBy: req.TriggeredBy,
		Port: 8080, ImageAvailability: "available", ImageSource: "registry", CreatedAt: b.now()}
	if t := p.Target; t != nil {
		d.Image, d.SourceNumber, d.EnvKeys = t.Image, t.Number, t.EnvKeys
		id := t.ID
		d.SourceDeploymentID = &id
	} else if p.Current != nil {
		d.Image, d.EnvKeys = p.Current.Image, p.Current.EnvKeys
	}
	d = b.addLocked(d)
	cp := d
	b.publishLocked(api.Event{Type: "deployment", Service: d.Service, DeploymentID: d.ID, Status: d.Status,
		Message: "creating container", Deployment: &cp})
	return d, nil
}

// Subscribe implements ui.Backend. The channel closes when ctx ends.
func (b *Backend) Subscribe(ctx context.Context) (<-chan api.Event, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ch := make(chan api.Event, 4096)
	id := b.nextSub
	b.nextSub++
	b.subs[id] = ch
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, id)
		close(ch)
	})
	return ch, nil
}

// Logs implements ui.Backend: every deployment's log is the one WriteLog
// writes (with times when asked: the fake's clock, a second a line from
// Epoch); with follow it streams what WriteLog writes next until ctx ends.
func (b *Backend) Logs(ctx context.Context, _, _ string, opts api.LogOptions, w io.Writer) error {
	b.mu.Lock()
	sent := 0
	wake := b.logWake
	b.mu.Unlock()
	for {
		b.mu.Lock()
		lines := b.logLines[sent:]
		sent = len(b.logLines)
		if len(lines) == 0 {
			wake = b.logWake
		}
		b.mu.Unlock()
		for i, l := range lines {
			if opts.Timestamps {
				at := Epoch.Add(time.Duration(sent-len(lines)+i) * time.Second)
				l = at.Format(time.RFC3339Nano) + " " + l
			}
			if _, err := io.WriteString(w, l+"\n"); err != nil {
				return nil
			}
		}
		if !opts.Follow {
			return nil
		}
		if len(lines) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		}
	}
}

// WriteLog adds lines to the log Logs streams.
func (b *Backend) WriteLog(lines ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.logLines = append(b.logLines, lines...)
	if b.logWake != nil {
		close(b.logWake)
	}
	b.logWake = make(chan struct{})
}

// Unfreeze implements ui.Backend: it lifts the service's freeze.
func (b *Backend) Unfreeze(_ context.Context, service, _ string) (api.Unfrozen, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.services {
		if b.services[i].Name == service {
			was := b.services[i].Frozen
			b.services[i].Frozen, b.services[i].FrozenBy, b.services[i].FrozenAt, b.services[i].FrozenReason = false, "", nil, ""
			return api.Unfrozen{Service: b.services[i], WasFrozen: was}, nil
		}
	}
	return api.Unfrozen{}, fmt.Errorf("unfreeze %s: %w", service, ErrNotFound)
}

// DeleteService implements ui.Backend: the service leaves the list.
func (b *Backend) DeleteService(_ context.Context, name string, purge bool) (api.ServiceDeletion, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.services {
		if b.services[i].Name == name {
			b.services = slices.Delete(b.services, i, i+1)
			return api.ServiceDeletion{Service: name, Purged: purge}, nil
		}
	}
	return api.ServiceDeletion{}, fmt.Errorf("delete %s: %w", name, ErrNotFound)
}
