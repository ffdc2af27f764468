package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/store"
)

// apiHandler serves the daemon's JSON API (the CLI and the dashboard use it
// over the unix socket). Every route goes through withRoles: a route that is
// not a GET needs an admin unless roles.go lists it as a read.
func (d *Daemon) apiHandler() http.Handler { return d.withRoles(d.apiRoutes().ServeMux) }

// apiRoutes are the API's endpoints.
func (d *Daemon) apiRoutes() *routeMux {
	mux := &routeMux{ServeMux: http.NewServeMux()}
	mux.Handle("GET /v1/status", jsonHandler(d.getStatus))
	mux.Handle("GET /v1/services", jsonHandler(d.listServices))
	mux.Handle("POST /v1/services", jsonHandler(d.createService))
	mux.Handle("GET /v1/services/{name}", jsonHandler(d.getService))
	mux.Handle("PATCH /v1/services/{name}", jsonHandler(d.updateService))
	mux.Handle("DELETE /v1/services/{name}", jsonHandler(d.deleteService))
	mux.Handle("POST /v1/services/{name}/unfreeze", jsonHandler(d.unfreeze))
	mux.Handle("POST /v1/services/{name}/scale", jsonHandler(d.scale))
	mux.Handle("GET /v1/services/{name}/deployments", jsonHandler(d.listDeployments))
	mux.Handle("GET /v1/deployments/{ref}", jsonHandler(d.getDeployment))
	mux.Handle("POST /v1/plan", jsonHandler(d.planAction))
	mux.Handle("POST /v1/actions", jsonHandler(d.act))
	mux.Handle("POST /v1/prune", jsonHandler(d.prune))
	mux.Handle("POST /v1/registry/gc", jsonHandler(d.registryGC))
	mux.Handle("GET /v1/registry/credential", jsonHandler(d.registryCredential))
	mux.Handle("GET /v1/certs", jsonHandler(d.listCertificates))
	mux.Handle("GET /v1/nodes", jsonHandler(d.listNodes))
	mux.Handle("GET /v1/traffic", jsonHandler(d.getTraffic))
	mux.Handle("GET /v1/stats", jsonHandler(d.getStats))
	mux.Handle("POST /v1/services/{name}/images/check", jsonHandler(d.recheckImages))
	// Streams.
	mux.HandleFunc("GET /v1/events", d.events)
	mux.HandleFunc("GET /v1/services/{name}/logs", d.logs)
	mux.HandleFunc("POST /v1/services/{name}/build", d.buildHandler)
	mux.HandleFunc("POST /v1/services/{name}/git/receive", d.gitReceive)
	return mux
}

// routeMux is a ServeMux that remembers its patterns, so that a test can
// call every route, the ones added later too, as a viewer.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// jsonHandler serves a handler that answers one JSON value (with its status)
// or an error, which apiError maps.
type jsonHandler func(r *http.Request) (int, any, error)

func (h jsonHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, v, err := h(r)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, status, v)
}

// apiError maps engine errors to API codes and HTTP statuses, in one place.
func apiError(err error) (int, api.Error) {
	switch {
	case errors.Is(err, engine.ErrInvalid):
		return http.StatusBadRequest, api.Error{Error: err.Error(), Code: "invalid"}
	case errors.Is(err, engine.ErrNotFound):
		return http.StatusNotFound, api.Error{Error: err.Error(), Code: "not_found"}
	case errors.Is(err, engine.ErrInProgress):
		return http.StatusConflict, api.Error{Error: err.Error(), Code: "in_progress"}
	case errors.Is(err, engine.ErrRefused):
		return http.StatusConflict, api.Error{Error: err.Error(), Code: "refused"}
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, api.Error{Error: err.Error(), Code: "forbidden"}
	case errors.Is(err, engine.ErrUnavailable):
		return http.StatusServiceUnavailable, api.Error{Error: err.Error(), Code: "unavailable"}
	}
	return http.StatusInternalServerError, api.Error{Error: err.Error(), Code: "internal"}
}

func writeErr(w http.ResponseWriter, err error) {
	status, body := apiError(err)
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("bad request body: %v", err)
	}
	return nil
}

type requestError struct{ msg string }

func (e *requestError) Error() string        { return e.msg }
func (e *requestError) Is(target error) bool { return target == engine.ErrInvalid }

func badRequest(format string, args ...any) error {
	return &requestError{fmt.Sprintf(format, args...)}
}

func showEnv(r *http.Request) bool { return r.URL.Query().Get("show_env") == "1" }

func (d *Daemon) getStatus(r *http.Request) (int, any, error) {
	return http.StatusOK, d.Status(r.Context()), nil
}

// getTraffic answers every service's recent answers through the router
// (?service=NAME for one).
func (d *Daemon) getTraffic(r *http.Request) (int, any, error) {
	ctx := r.Context()
	svcs, err := d.Engine.Services(ctx)
	if name := r.URL.Query().Get("service"); name != "" {
		var svc store.Service
		svc, err = d.Engine.Service(ctx, name)
		svcs = []store.Service{svc}
	}
	if err != nil {
		return 0, nil, err
	}
	out := make([]api.Traffic, 0, len(svcs))
	for _, svc := range svcs {
		t := d.Engine.Traffic(svc.Name)
		at := api.Traffic{Service: svc.Name, Step: t.Step.Seconds(), Points: make([]api.TrafficPoint, 0, len(t.Points))}
		for _, p := range t.Points {
			c := p.Responses
			at.Points = append(at.Points, api.TrafficPoint{At: p.At, C1xx: c[0], C2xx: c[1], C3xx: c[2], C4xx: c[3], C5xx: c[4]})
		}
		out = append(out, at)
	}
	return http.StatusOK, out, nil
}

// getStats answers the live CPU and memory of every ACTIVE container, from
// the engine's sampler (one for every caller: engine/stats.go).
func (d *Daemon) getStats(r *http.Request) (int, any, error) {
	stats, err := d.Engine.Stats(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := make([]api.ServiceStats, 0, len(stats))
	for _, s := range stats {
		as := api.ServiceStats{Service: s.Service, Deployment: s.DeploymentID, Number: s.Number,
			MemoryBytes: s.Memory, MemoryLimit: s.MemLimit, Containers: make([]api.ContainerStats, 0, len(s.Containers))}
		if s.HasCPU {
			as.CPUPercent = &s.CPUPercent
		}
		for _, c := range s.Containers {
			ac := api.ContainerStats{ContainerID: c.ContainerID, Slot: c.Slot, MemoryBytes: c.Memory,
				MemoryLimit: c.MemLimit, SampledAt: c.At}
			if c.HasCPU {
				cpu := c.CPUPercent
				ac.CPUPercent = &cpu
			}
			as.Containers = append(as.Containers, ac)
		}
		out = append(out, as)
	}
	return http.StatusOK, out, nil
}

// recheckImages checks again the images of a service's deployments whose
// last check is older than engine.ImageRecheckAge (the dashboard asks when
// someone opens the service's deployments).
func (d *Daemon) recheckImages(r *http.Request) (int, any, error) {
	n, err := d.Engine.RecheckImages(r.Context(), r.PathValue("name"), engine.ImageRecheckAge)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, api.ImagesChecked{Service: r.PathValue("name"), Checked: n}, nil
}

func (d *Daemon) listServices(r *http.Request) (int, any, error) {
	out, err := d.services(r.Context(), showEnv(r))
	return http.StatusOK, out, err
}

func (d *Daemon) services(ctx context.Context, withEnv bool) ([]api.Service, error) {
	svcs, err := d.Engine.Services(ctx)
	if err != nil {
		return nil, err
	}
	v := view{e: d.Engine, showEnv: withEnv}
	out := make([]api.Service, 0, len(svcs))
	for _, s := range svcs {
		out = append(out, v.service(ctx, s, serviceStatus(ctx, d.Engine, s)))
	}
	return out, nil
}

func (d *Daemon) getService(r *http.Request) (int, any, error) {
	svc, err := d.Engine.Service(r.Context(), r.PathValue("name"))
	if err != nil {
		return 0, nil, err
	}
	v := view{e: d.Engine, showEnv: showEnv(r)}
	return http.StatusOK, v.service(r.Context(), svc, serviceStatus(r.Context(), d.Engine, svc)), nil
}

// patch turns a ServiceSpec into an engine patch, reading durations and sizes.
func patch(spec api.ServiceSpec) (engine.ServicePatch, error) {
	p := engine.ServicePatch{
		Image: spec.Image, Port: spec.Port, Domains: spec.Domains,
		SetEnv: spec.Env, UnsetEnv: spec.UnsetEnv, HealthPath: spec.HealthPath, CPUs: spec.CPUs,
		Constraints: spec.Constraints, PlacementPrefs: spec.PlacementPrefs,
		GitBranch: spec.GitBranch, PushBuilds: spec.PushBuilds, HTTPSRedirect: spec.HTTPSRedirect,
		AutoRollback: spec.AutoRollback, WatchFailures: spec.WatchFailures, Watch5xx: spec.Watch5xx, KeepWarm: spec.KeepWarm,
		Replicas: spec.Replicas,
	}
	for _, f := range []struct {
		name string
		in   *string
		out  **time.Duration
	}{
		{"health interval", spec.HealthInterval, &p.HealthInterval},
		{"health timeout", spec.HealthTimeout, &p.HealthTimeout},
		{"deploy timeout", spec.DeployTimeout, &p.DeployTimeout},
		{"watch window", spec.WatchWindow, &p.WatchWindow},
	} {
		d, err := parseDuration(f.in)
		if err != nil {
			return p, badRequest("invalid %s %q: use a duration like 1s or 500ms", f.name, *f.in)
		}
		*f.out = d
	}
	if spec.Memory != nil {
		m, err := engine.ParseMemory(*spec.Memory)
		if err != nil {
			return p, err
		}
		p.MemoryBytes = &m
	}
	return p, nil
}

// decodePatch reads a ServiceSpec body and the engine patch it makes.
func decodePatch(r *http.Request) (api.ServiceSpec, engine.ServicePatch, error) {
	var spec api.ServiceSpec
	if err := decode(r, &spec); err != nil {
		return spec, engine.ServicePatch{}, err
	}
	p, err := patch(spec)
	return spec, p, err
}

func (d *Daemon) createService(r *http.Request) (int, any, error) {
	spec, p, err := decodePatch(r)
	if err != nil {
		return 0, nil, err
	}
	if spec.Image == nil || spec.Port == nil {
		return 0, nil, badRequest("a service needs --image and --port")
	}
	if len(spec.UnsetEnv) > 0 {
		return 0, nil, badRequest("unset_env is for updates")
	}
	cfg, err := p.Apply(store.Config{})
	if err != nil {
		return 0, nil, err
	}
	// The service's git settings and HTTPS redirect are set by an update once
	// it exists; checked first, as its watch policy, so that bad input
	// creates nothing.
	settings := engine.ServicePatch{GitBranch: p.GitBranch, PushBuilds: p.PushBuilds, HTTPSRedirect: p.HTTPSRedirect}
	if _, err := settings.ApplyGit(store.GitSettings{}); err != nil {
		return 0, nil, err
	}
	policy, err := p.ApplyPolicy(store.DefaultPolicy())
	if err != nil {
		return 0, nil, err
	}
	replicas := 1
	if p.Replicas != nil {
		replicas = *p.Replicas
	}
	svc, err := d.Engine.CreateServiceWith(r.Context(), spec.Name, cfg, policy, replicas)
	if err != nil {
		return 0, nil, err
	}
	if settings.GitBranch != nil || settings.PushBuilds != nil || settings.HTTPSRedirect != nil {
		if svc, err = d.Engine.UpdateService(r.Context(), spec.Name, settings); err != nil {
			return 0, nil, err
		}
	}
	v := view{e: d.Engine}
	return http.StatusCreated, v.service(r.Context(), svc, "NONE"), nil
}

func (d *Daemon) updateService(r *http.Request) (int, any, error) {
	_, p, err := decodePatch(r)
	if err != nil {
		return 0, nil, err
	}
	svc, err := d.Engine.UpdateService(r.Context(), r.PathValue("name"), p)
	if err != nil {
		return 0, nil, err
	}
	v := view{e: d.Engine}
	return http.StatusOK, v.service(r.Context(), svc, serviceStatus(r.Context(), d.Engine, svc)), nil
}

// DELETE /v1/services/{name}[?purge=1]
func (d *Daemon) deleteService(r *http.Request) (int, any, error) {
	purge := false
	switch p := r.URL.Query().Get("purge"); p {
	case "", "0":
	case "1":
		purge = true
	default:
		return 0, nil, badRequest("invalid purge %q: want 1 or 0", p)
	}
	name := r.PathValue("name")
	res, err := d.Engine.DeleteService(r.Context(), name, purge)
	if err != nil {
		return 0, nil, err
	}
	out := api.ServiceDeletion{Service: name, Purged: purge, Containers: res.Containers, Deployments: res.Deployments,
		Images: prunedImages(res.Images)}
	return http.StatusOK, out, nil
}

func (d *Daemon) unfreeze(r *http.Request) (int, any, error) {
	var req api.UnfreezeRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	// Who lifts the freeze is the caller, not what the body says.
	name := r.PathValue("name")
	before, err := d.Engine.Unfreeze(r.Context(), name, caller(r).Actor)
	if err != nil {
		return 0, nil, err
	}
	svc, err := d.Engine.Service(r.Context(), name)
	if err != nil {
		return 0, nil, err
	}
	v := view{e: d.Engine}
	return http.StatusOK, api.Unfrozen{Service: v.service(r.Context(), svc, serviceStatus(r.Context(), d.Engine, svc)), WasFrozen: before != nil}, nil
}

// scale runs a service's ACTIVE deployment with another replica count, in
// place, and makes it the service's.
func (d *Daemon) scale(r *http.Request) (int, any, error) {
	var req api.ScaleRequest
	if err := decode(r, &req); err != nil {
		return 0, nil, err
	}
	name := r.PathValue("name")
	dep, err := d.Engine.Scale(r.Context(), name, req.Replicas, caller(r).Actor)
	if err != nil {
		return 0, nil, err
	}
	svc, err := d.Engine.Service(r.Context(), name)
	if err != nil {
		return 0, nil, err
	}
	v := view{e: d.Engine}
	out := api.Scaled{Service: v.service(r.Context(), svc, serviceStatus(r.Context(), d.Engine, svc))}
	if dep.ID != "" {
		a := v.deployment(r.Context(), dep, svc.ActiveDeploymentID)
		out.Deployment = &a
	}
	return http.StatusOK, out, nil
}

func intParam(r *http.Request, name string, def int) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, badRequest("invalid %s %q", name, s)
	}
	return n, nil
}

func (d *Daemon) listDeployments(r *http.Request) (int, any, error) {
	limit, err := intParam(r, "limit", 50)
	if err != nil {
		return 0, nil, err
	}
	before, err := intParam(r, "before", 0)
	if err != nil {
		return 0, nil, err
	}
	out, err := d.deployments(r.Context(), r.PathValue("name"), min(limit, 1000), before, showEnv(r))
	return http.StatusOK, out, err
}

func (d *Daemon) deployments(ctx context.Context, service string, limit, before int, withEnv bool) ([]api.Deployment, error) {
	svc, err := d.Engine.Service(ctx, service)
	if err != nil {
		return nil, err
	}
	ds, err := d.Engine.Deployments(ctx, service, limit, before)
	if err != nil {
		return nil, err
	}
	v := view{e: d.Engine, showEnv: withEnv}
	out := make([]api.Deployment, 0, len(ds))
	for _, dep := range ds {
		out = append(out, v.deployment(ctx, dep, svc.ActiveDeploymentID))
	}
	return out, nil
}

func (d *Daemon) getDeployment(r *http.Request) (int, any, error) {
	out, err := d.deployment(r.Context(), r.URL.Query().Get("service"), r.PathValue("ref"), showEnv(r))
	return http.StatusOK, out, err
}

func (d *Daemon) deployment(ctx context.Context, service, ref string, withEnv bool) (api.DeploymentDetail, error) {
	dep, err := d.Engine.Deployment(ctx, service, ref)
	if err != nil {
		return api.DeploymentDetail{}, err
	}
	svc, err := d.Engine.Service(ctx, dep.Service)
	if err != nil {
		return api.DeploymentDetail{}, err
	}
	evs, err := d.Engine.Events(ctx, dep.ID)
	if err != nil {
		return api.DeploymentDetail{}, err
	}
	v := view{e: d.Engine, showEnv: withEnv}
	out := api.DeploymentDetail{Deployment: v.deployment(ctx, dep, svc.ActiveDeploymentID), Events: make([]api.Event, 0, len(evs))}
	for _, ev := range evs {
		out.Events = append(out.Events, v.event(ev))
	}
	return out, nil
}

// decodeAction reads an action request; who triggers it is the caller, not
// what the body says.
func decodeAction(r *http.Request) (api.ActionRequest, error) {
	var req api.ActionRequest
	if err := decode(r, &req); err != nil {
		return req, err
	}
	req.TriggeredBy = caller(r).Actor
	return req, nil
}

// POST /v1/plan: what an action would do, or why it would be refused.
func (d *Daemon) planAction(r *http.Request) (int, any, error) {
	req, err := decodeAction(r)
	if err != nil {
		return 0, nil, err
	}
	p, err := d.plan(r.Context(), req)
	return http.StatusOK, p, err
}

func (d *Daemon) act(r *http.Request) (int, any, error) {
	req, err := decodeAction(r)
	if err != nil {
		return 0, nil, err
	}
	if req.DryRun {
		return 0, nil, badRequest("a dry run is POST /v1/plan")
	}
	dep, err := d.start(r.Context(), req)
	return http.StatusCreated, dep, err
}

func engineRequest(req api.ActionRequest) engine.Request {
	return engine.Request{Kind: store.Kind(req.Kind), Service: req.Service, Deployment: req.Deployment, Image: req.Image,
		TriggeredBy: req.TriggeredBy, AllowSchemaChange: req.AllowSchemaChange, GitPush: req.GitPush}
}

func (d *Daemon) plan(ctx context.Context, req api.ActionRequest) (api.Plan, error) {
	p, err := d.Engine.Plan(ctx, engineRequest(req))
	if err != nil {
		return api.Plan{}, err
	}
	v := view{e: d.Engine}
	return v.plan(ctx, p), nil
}

func (d *Daemon) start(ctx context.Context, req api.ActionRequest) (api.Deployment, error) {
	dep, err := d.Engine.Act(ctx, engineRequest(req))
	if err != nil {
		return api.Deployment{}, err
	}
	v := view{e: d.Engine}
	return v.deployment(ctx, dep, ""), nil
}

// events streams api.Events as JSON lines until the client goes away.
func (d *Daemon) events(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeErr(w, errors.New("streaming unsupported"))
		return
	}
	service := r.URL.Query().Get("service")
	ch := d.hub.Subscribe(r.Context())
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()
	enc := json.NewEncoder(w)
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			w.Write([]byte("\n"))
		case ev, ok := <-ch:
			if !ok {
				return // cut off: the client subscribes again
			}
			if service != "" && ev.Service != service {
				continue
			}
			if enc.Encode(ev) != nil {
				return
			}
		}
		flusher.Flush()
	}
}

// stripTimestamps takes the time off the front of each line of a log kept
// with its times.
func stripTimestamps(text []byte) []byte {
	var out []byte
	for line := range strings.Lines(string(text)) {
		_, rest, _ := api.SplitLogTimestamp(line)
		out = append(out, rest...)
	}
	return out
}

// flushWriter flushes after every write, so that followed logs arrive live.
type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func (fw flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	fw.f.Flush()
	return n, err
}

func (d *Daemon) logs(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	svc, err := d.Engine.Service(ctx, name)
	if err != nil {
		writeErr(w, err)
		return
	}
	ref := r.URL.Query().Get("deployment")
	if ref == "" {
		ref = svc.ActiveDeploymentID
	}
	if ref == "" {
		writeErr(w, &requestError{fmt.Sprintf("service %s has no ACTIVE deployment: name one with --deployment", name)})
		return
	}
	dep, err := d.Engine.Deployment(ctx, name, ref)
	if err != nil {
		writeErr(w, err)
		return
	}
	// Refusals are answered before the stream starts, so that the CLI exits 1
	// with them; an error after that comes in the Clank-Error trailer.
	kept, err := d.Engine.LogSource(ctx, dep)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Trailer", api.ErrorTrailer)
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w: w, f: w.(http.Flusher)}
	timestamps := r.URL.Query().Get("timestamps") == "1"
	if len(kept) > 0 {
		// The container is gone: what was kept of its log, each part under
		// a header line that says so; there is nothing more to follow.
		for _, l := range kept {
			text := l.Text // kept with their times
			if !timestamps {
				text = stripTimestamps(text)
			}
			if len(text) > 0 && text[len(text)-1] != '\n' {
				text = append(text, '\n')
			}
			if _, err := io.WriteString(w, api.KeptLogHeader(l.ContainerID, l.RemovedAt, l.Cut)+"\n"); err != nil {
				return
			}
			if _, err := w.Write(text); err != nil {
				return
			}
		}
		return
	}
	fw.f.Flush()
	if err := d.Engine.Logs(ctx, dep, r.URL.Query().Get("follow") == "1", timestamps, fw); err != nil && ctx.Err() == nil {
		w.Header().Set(api.ErrorTrailer, fmt.Sprintf("logs of deployment #%d: %v", dep.Number, err))
	}
}
