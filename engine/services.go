package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/clank-dev/clank/store"
)

// ServicePatch changes some of a service's configuration; nil fields stay.
type ServicePatch struct {
	Image          *string
	Port           *int
	Domains        []string // nil keeps the domains; a non-nil list replaces them
	SetEnv         map[string]string
	UnsetEnv       []string
	HealthPath     *string
	HealthInterval *time.Duration
	HealthTimeout  *time.Duration
	DeployTimeout  *time.Duration
	CPUs           *float64
	MemoryBytes    *int64
	Constraints    *[]string // nil keeps them; a list (empty too) replaces them
	PlacementPrefs *[]string
	GitBranch      *string
	PushBuilds     *bool
	// HTTPSRedirect is service policy, not config: it takes effect at once
	// (UpdateService), and no deployment records it.
	HTTPSRedirect *bool

	// Replicas is the service's scale for its next deployments (the ACTIVE
	// one keeps its count: Scale changes that). Never part of a snapshot.
	Replicas *int

	// The service's policy (never part of a deployment's snapshot).
	AutoRollback  *bool
	WatchWindow   *time.Duration
	WatchFailures *int
	Watch5xx      *float64
	KeepWarm      *bool
}

// ApplyPolicy returns p with the patch's policy fields applied and checked.
func (p ServicePatch) ApplyPolicy(pol store.Policy) (store.Policy, error) {
	if p.AutoRollback != nil {
		pol.AutoRollback = *p.AutoRollback
	}
	if p.WatchWindow != nil {
		pol.WatchWindow = *p.WatchWindow
	}
	if p.WatchFailures != nil {
		pol.WatchFailures = *p.WatchFailures
	}
	if p.Watch5xx != nil {
		pol.Watch5xx = *p.Watch5xx
	}
	if p.KeepWarm != nil {
		pol.KeepWarm = *p.KeepWarm
	}
	return pol, ValidatePolicy(pol)
}

// Apply returns cfg with the patch applied (not yet validated).
func (p ServicePatch) Apply(cfg store.Config) (store.Config, error) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&cfg.Image, p.Image)
	set(&cfg.Health.Path, p.HealthPath)
	if p.Port != nil {
		cfg.Port = *p.Port
	}
	if p.Domains != nil {
		cfg.Domains = slices.Clone(p.Domains)
	}
	for _, d := range []struct {
		dst *time.Duration
		v   *time.Duration
	}{{&cfg.Health.Interval, p.HealthInterval}, {&cfg.Health.Timeout, p.HealthTimeout}, {&cfg.DeployTimeout, p.DeployTimeout}} {
		if d.v != nil {
			if *d.v <= 0 {
				return cfg, &invalid{fmt.Sprintf("invalid duration %s: it must be positive", *d.v)}
			}
			*d.dst = *d.v
		}
	}
	if p.CPUs != nil {
		cfg.CPUs = *p.CPUs
	}
	if p.MemoryBytes != nil {
		cfg.MemoryBytes = *p.MemoryBytes
	}
	if p.Constraints != nil {
		cfg.Constraints = slices.Clone(*p.Constraints)
	}
	if p.PlacementPrefs != nil {
		cfg.PlacementPrefs = slices.Clone(*p.PlacementPrefs)
	}
	env := make(map[string]string, len(cfg.Env)+len(p.SetEnv))
	for k, v := range cfg.Env {
		env[k] = v
	}
	for k, v := range p.SetEnv {
		if err := ValidateEnvKey(k); err != nil {
			return cfg, err
		}
		env[k] = v
	}
	for _, k := range p.UnsetEnv {
		if err := ValidateEnvKey(k); err != nil {
			return cfg, err
		}
		if _, ok := env[k]; !ok {
			return cfg, &invalid{fmt.Sprintf("env key %s is not set", k)}
		}
		delete(env, k)
	}
	cfg.Env = env
	return cfg, nil
}

// ApplyGit returns g with the patch's git settings applied and checked.
func (p ServicePatch) ApplyGit(g store.GitSettings) (store.GitSettings, error) {
	if p.GitBranch != nil {
		if err := ValidateGitBranch(*p.GitBranch); err != nil {
			return g, err
		}
		g.Branch = *p.GitBranch
	}
	if p.PushBuilds != nil {
		g.PushBuilds = *p.PushBuilds
	}
	return g, nil
}

// CreateService adds a service with the default policy and one replica.
// Without domains it gets <name>.localhost; its HTTPS redirect is on
// (UpdateService changes it).
func (e *Engine) CreateService(ctx context.Context, name string, cfg store.Config) (store.Service, error) {
	return e.CreateServiceWith(ctx, name, cfg, store.DefaultPolicy(), 1)
}

// CreateServiceWith adds a service with policy and a replica count.
func (e *Engine) CreateServiceWith(ctx context.Context, name string, cfg store.Config, policy store.Policy, replicas int) (store.Service, error) {
	if err := ValidatePolicy(policy); err != nil {
		return store.Service{}, err
	}
	if err := ValidateReplicas(replicas); err != nil {
		return store.Service{}, err
	}
	if err := ValidateServiceName(name); err != nil {
		return store.Service{}, err
	}
	if len(cfg.Domains) == 0 {
		cfg.Domains = []string{name + DomainSuffix}
	}
	cfg, err := ValidateConfig(cfg)
	if err != nil {
		return store.Service{}, err
	}
	if err := e.checkDomains(ctx, name, cfg.Domains); err != nil {
		return store.Service{}, err
	}
	svc := store.Service{Name: name, Config: cfg, HTTPSRedirect: true, Policy: policy, Replicas: replicas}
	if err := e.store.CreateService(ctx, svc); err != nil {
		return store.Service{}, e.storeErr(err, "service "+name)
	}
	svc, err = e.store.GetService(ctx, name)
	if err != nil {
		return store.Service{}, err
	}
	e.routeUndeployed(ctx, name)
	e.certs.Redirect(name, svc.HTTPSRedirect)
	e.publish(Event{Type: EventService, Service: name, Message: "created"})
	return svc, nil
}

// UpdateService changes a service's configuration without deploying it.
func (e *Engine) UpdateService(ctx context.Context, name string, p ServicePatch) (store.Service, error) {
	svc, err := e.Service(ctx, name)
	if err != nil {
		return svc, err
	}
	cfg, err := p.Apply(svc.Config)
	if err != nil {
		return svc, err
	}
	policy, err := p.ApplyPolicy(svc.Policy)
	if err != nil {
		return svc, err
	}
	if p.Replicas != nil {
		if err := ValidateReplicas(*p.Replicas); err != nil {
			return svc, err
		}
		svc.Replicas = *p.Replicas
	}
	if len(cfg.Domains) == 0 {
		cfg.Domains = []string{name + DomainSuffix}
	}
	if cfg, err = ValidateConfig(cfg); err != nil {
		return svc, err
	}
	if err := e.checkDomains(ctx, name, cfg.Domains); err != nil {
		return svc, err
	}
	if svc.Git, err = p.ApplyGit(svc.Git); err != nil {
		return svc, err
	}
	svc.Config, svc.Policy = cfg, policy
	if p.HTTPSRedirect != nil {
		svc.HTTPSRedirect = *p.HTTPSRedirect
	}
	if err := e.store.UpdateService(ctx, svc); err != nil {
		return svc, e.storeErr(err, "service "+name)
	}
	e.routeUndeployed(ctx, name)
	e.certs.Redirect(name, svc.HTTPSRedirect)
	e.publish(Event{Type: EventService, Service: name, Message: "config changed"})
	return e.store.GetService(ctx, name)
}

// routeUndeployed points a service that has nothing deployed yet at no
// backend (503) for its configured domains. Once a deployment is ACTIVE its
// snapshot's domains route until the next cutover, so a service that has one,
// or one on its way (which holds e.inflight), is left alone; e.mu keeps a
// deployment from starting between the check and the switch.
func (e *Engine) routeUndeployed(ctx context.Context, name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, busy := e.inflight[name]; busy {
		return
	}
	svc, err := e.store.GetService(ctx, name)
	if err != nil || svc.ActiveDeploymentID != "" {
		return
	}
	e.routeNothing(name, svc.Config.Domains)
}

// checkDomains refuses domains that another service claims in its config,
// serves with its ACTIVE deployment (a rollback may have restored old
// domains), or is about to serve with a deployment in progress.
func (e *Engine) checkDomains(ctx context.Context, service string, domains []string) error {
	services, err := e.store.ListServices(ctx)
	if err != nil {
		return err
	}
	inProgress, err := e.store.ListDeploymentsByStatus(ctx, store.StatusDeploying, store.StatusHealthChecking)
	if err != nil {
		return err
	}
	for _, other := range services {
		if other.Name == service {
			continue
		}
		claimed := slices.Clone(other.Config.Domains)
		if other.ActiveDeploymentID != "" {
			if d, err := e.store.GetDeployment(ctx, other.ActiveDeploymentID); err == nil {
				claimed = append(claimed, d.Config.Domains...)
			}
		}
		for _, d := range inProgress {
			if d.Service == other.Name {
				claimed = append(claimed, d.Config.Domains...)
			}
		}
		for _, d := range domains {
			if slices.Contains(claimed, d) {
				return refuse(store.ErrDomainTaken, fmt.Sprintf("domain %s is taken by service %s", d, other.Name))
			}
		}
	}
	return nil
}

// Service returns one service.
func (e *Engine) Service(ctx context.Context, name string) (store.Service, error) {
	svc, err := e.store.GetService(ctx, name)
	if err != nil {
		return svc, e.storeErr(err, fmt.Sprintf("unknown service %q", name))
	}
	return svc, nil
}

// Services lists every service by name.
func (e *Engine) Services(ctx context.Context) ([]store.Service, error) {
	return e.store.ListServices(ctx)
}

// Deployments lists a service's deployments newest first, a page at a time.
func (e *Engine) Deployments(ctx context.Context, service string, limit, beforeNumber int) ([]store.Deployment, error) {
	if _, err := e.Service(ctx, service); err != nil {
		return nil, err
	}
	return e.store.ListDeployments(ctx, service, limit, beforeNumber)
}

// Deployment finds a deployment of service by id or per-service number
// ("7" or "#7"); service may be "" when ref is an id.
func (e *Engine) Deployment(ctx context.Context, service, ref string) (store.Deployment, error) {
	if ref == "" {
		return store.Deployment{}, &invalid{"a deployment id or number is required (--deployment)"}
	}
	num := ref
	if num[0] == '#' {
		num = num[1:]
	}
	var n int
	if _, err := fmt.Sscanf(num, "%d", &n); err == nil && fmt.Sprint(n) == num && service != "" {
		d, err := e.store.GetDeploymentByNumber(ctx, service, n)
		if err != nil {
			return d, e.storeErr(err, fmt.Sprintf("service %s has no deployment #%d", service, n))
		}
		return d, nil
	}
	d, err := e.store.GetDeployment(ctx, ref)
	if err != nil {
		return d, e.storeErr(err, fmt.Sprintf("unknown deployment %q", ref))
	}
	if service != "" && d.Service != service {
		return d, &notFound{fmt.Sprintf("deployment %s belongs to service %s, not %s", ref, d.Service, service)}
	}
	return d, nil
}

// Events lists a deployment's lifecycle events in order.
func (e *Engine) Events(ctx context.Context, deploymentID string) ([]store.Event, error) {
	return e.store.Events(ctx, deploymentID)
}

// storeErr turns store sentinels into the engine's, with msg as the text.
func (e *Engine) storeErr(err error, msg string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &notFound{msg}
	case errors.Is(err, store.ErrExists):
		return refuse(err, msg+" already exists")
	case errors.Is(err, store.ErrDomainTaken):
		return refuse(err, err.Error())
	}
	return err
}
