// Package realdaemon gives the dashboard's tests a real Clank: a daemon
// (store, Docker, edge router, engine, API socket) on a temporary data dir,
// brought to a named state through its own API, so that every plan, refusal,
// status and event the dashboard shows, locally or over SSH, is the daemon's.
//
// The states: New (no services), Start (web deployed twice, a rollback to
// make) and History (a history that meets every rule a rollback can meet).
// A test that acts needs its own World; tests that only look may share one.
// Worlds are independent (their images too), so tests may run in parallel.
//
// Around them: Snapshot and CreatedNothing check, after a positive signal,
// that an action created no deployment record and no container; Counting is
// the API client as a dashboard's Backend, counting what the dashboard asks;
// Mask and Clock make a real screen's golden file stable.
package realdaemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/daemon"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/docker"
	"github.com/clank-dev/clank/internal/testdocker"
)

// Service is the name of the service Start and History deploy.
const Service = "web"

// WorldLabel is the image label that makes a World's images its own.
const WorldLabel = testdocker.TestLabel + ".world"

// DeployWithin bounds one deployment of the sample app, from Act to its end,
// on a loaded machine.
const DeployWithin = 60 * time.Second

// World is a running daemon and what a test made of it.
type World struct {
	t       testing.TB
	Daemon  *daemon.Daemon
	Client  *api.Client
	Runtime *docker.Runtime
	images  map[string]string // version -> tag
	nonce   string            // this World's WorldLabel value

	// Start's state: OldImage (v1) deployed as Old, then NewImage (v2) as
	// Current, which is ACTIVE.
	OldImage, NewImage string
	Old, Current       api.Deployment
}

// New starts a daemon on t.TempDir() with no services (edge router on
// 127.0.0.1:0, no SSH dashboard, no registry). It skips without Docker
// (fails with CLANK_REQUIRE_DOCKER=1). The daemon, its containers and the
// images the World built go when the test ends.
func New(t testing.TB) *World {
	t.Helper()
	return NewWith(t, func(*daemon.Config) {})
}

// NewWith is New with the daemon's configuration changed by configure (HTTPS on,
// for one).
func NewWith(t testing.TB, configure func(*daemon.Config)) *World {
	t.Helper()
	rt := testdocker.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := daemon.Config{
		DataDir:      t.TempDir(),
		HTTPAddr:     "127.0.0.1:0",
		KeepImages:   -1, // the test images are the test's to remove
		DrainTimeout: time.Second,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	configure(&cfg)
	d, err := daemon.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start the daemon: %v", err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		_ = d.Close(cctx)
	})
	// Runs before the daemon closes: every container it started goes.
	testdocker.Cleanup(t, rt, map[string]string{engine.LabelOwner: d.Engine.Owner()})
	return &World{t: t, Daemon: d, Client: api.NewClient(d.Socket()), Runtime: rt, images: map[string]string{},
		nonce: testdocker.RandomSuffix()}
}

// Start is New with Service deployed twice: the sample app at v1 (Old, now
// INACTIVE, its container gone) and then at v2 (Current, ACTIVE and served
// by the router).
func Start(t testing.TB) *World {
	t.Helper()
	return StartWith(t, Setup{})
}

// Setup varies the world Start makes.
type Setup struct {
	// OldLabels and NewLabels are image labels of the v1 and v2 images
	// (dev.clank.schema, for one).
	OldLabels, NewLabels map[string]string
}

// StartWith is Start with the images set up as told.
func StartWith(t testing.TB, setup Setup) *World {
	t.Helper()
	w := New(t)
	w.OldImage, w.NewImage = w.ImageLabelled("v1", setup.OldLabels), w.ImageLabelled("v2", setup.NewLabels)
	w.CreateService(Service, w.OldImage)
	w.Old = w.Deploy(Service, w.OldImage)
	w.Current = w.Deploy(Service, w.NewImage)
	w.Settle(Service)
	if got := w.Get(Service, "/"); got != "hello from v2" {
		t.Fatalf("after deploying v2 the router serves %q", got)
	}
	return w
}

// Image is the sample app image of version, built the first time it is
// asked for and removed when the test ends.
func (w *World) Image(version string) string {
	w.t.Helper()
	return w.ImageLabelled(version, nil)
}

// ImageLabelled is Image with image labels, set when it is first built.
// Every World's images are its own (they carry its WorldLabel): the same
// build in two Worlds of one process would otherwise be one image, and a
// test that removes it (RemoveImage) would take it from the other too.
func (w *World) ImageLabelled(version string, labels map[string]string) string {
	w.t.Helper()
	if tag, ok := w.images[version]; ok {
		return tag
	}
	own := map[string]string{WorldLabel: w.nonce}
	for k, v := range labels {
		own[k] = v
	}
	tag := testdocker.SampleImageLabelled(w.t, w.Runtime, version, own)
	w.images[version] = tag
	return tag
}

// harness is who the harness acts as: its deployments are triggered by
// "setup" (the socket's owner may name who acts, api.WithCaller), so that
// screens do not depend on the user who runs the tests.
var harness = api.Caller{Actor: "setup", Role: api.RoleAdmin}

// ctx bounds one API call of the harness, made as harness.
func (w *World) ctx() (context.Context, context.CancelFunc) {
	return w.ctxAs("")
}

// ctxAs bounds one API call of the harness, made as actor ("" is "setup").
func (w *World) ctxAs(actor string) (context.Context, context.CancelFunc) {
	c := harness
	if actor != "" {
		c.Actor = actor
	}
	return context.WithTimeout(api.WithCaller(context.Background(), c), 30*time.Second)
}

// CreateService creates a service running image, the sample app: port
// 8080, health GET /healthz every 200ms with a 1s timeout, deploy timeout
// DeployWithin, replaced deployments not kept warm (each cutover starts a
// container and removes the old one, as the screens show); each of with may
// change that spec first.
func (w *World) CreateService(name, image string, with ...func(*api.ServiceSpec)) api.Service {
	w.t.Helper()
	port, path, interval, timeout, deadline := testdocker.SampleAppPort, "/healthz", "200ms", "1s", DeployWithin.String()
	warm := false
	spec := api.ServiceSpec{Name: name, Image: &image, Port: &port, HealthPath: &path, HealthInterval: &interval,
		HealthTimeout: &timeout, DeployTimeout: &deadline, KeepWarm: &warm}
	for _, f := range with {
		f(&spec)
	}
	ctx, cancel := w.ctx()
	defer cancel()
	svc, err := w.Client.CreateService(ctx, spec)
	if err != nil {
		w.t.Fatalf("create %s: %v", name, err)
	}
	return svc
}

// Update changes a service's configuration without deploying it, as
// `clank service update` and `clank env set/unset` do.
func (w *World) Update(name string, spec api.ServiceSpec) {
	w.t.Helper()
	ctx, cancel := w.ctx()
	defer cancel()
	if _, err := w.Client.UpdateService(ctx, name, spec); err != nil {
		w.t.Fatalf("update %s: %v", name, err)
	}
}

// Act starts an action through the API, as the CLI does, and returns the new
// deployment (DEPLOYING). It acts as req.TriggeredBy ("" is "setup").
func (w *World) Act(req api.ActionRequest) api.Deployment {
	w.t.Helper()
	ctx, cancel := w.ctxAs(req.TriggeredBy)
	defer cancel()
	d, err := w.Client.Act(ctx, req)
	if err != nil {
		w.t.Fatalf("%s %s %s: %v", req.Kind, req.Service, req.Deployment, err)
	}
	return d
}

// Deploy deploys image as service and waits until it is ACTIVE.
func (w *World) Deploy(service, image string) api.Deployment {
	w.t.Helper()
	d := w.Act(api.ActionRequest{Kind: "deploy", Service: service, Image: image})
	return w.WaitStatus(d.ID, "ACTIVE", DeployWithin)
}

// WaitStatus polls the API until deployment id has status want, and fails
// the test if it ends otherwise (ACTIVE, FAILED, CANCELLED) or takes longer
// than within.
func (w *World) WaitStatus(id, want string, within time.Duration) api.Deployment {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		d, _, err := w.Client.Deployment(ctx, id)
		switch {
		case err == nil && d.Status == want:
			return d
		case err == nil && d.Status != want && (d.Status == "ACTIVE" || d.Status == "FAILED" || d.Status == "CANCELLED"):
			w.t.Fatalf("deployment #%d %s: %s %s, want %s", d.Number, id, d.Status, d.FailureReason, want)
		}
		select {
		case <-ctx.Done():
			w.t.Fatalf("deployment %s: status %q (err %v), want %s within %s", id, d.Status, err, want, within)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Deployments lists a service's deployments, newest first.
func (w *World) Deployments(service string) []api.Deployment {
	w.t.Helper()
	ctx, cancel := w.ctx()
	defer cancel()
	ds, err := w.Client.Deployments(ctx, service, 1000, 0)
	if err != nil {
		w.t.Fatalf("list %s's deployments: %v", service, err)
	}
	return ds
}

// Number is service's deployment number n, as the API lists it now.
func (w *World) Number(service string, n int) api.Deployment {
	w.t.Helper()
	for _, d := range w.Deployments(service) {
		if d.Number == n {
			return d
		}
	}
	w.t.Fatalf("%s has no deployment #%d", service, n)
	return api.Deployment{}
}

// Newest waits until service has more than n deployments and returns the
// newest: the one an action just created.
func (w *World) Newest(service string, n int) api.Deployment {
	w.t.Helper()
	var ds []api.Deployment
	w.poll(DeployWithin, func() string {
		if ds = w.Deployments(service); len(ds) > n {
			return ""
		}
		return service + ": no deployment after #" + strconv.Itoa(n)
	})
	return ds[0]
}

// poll calls check until it says nothing is missing (""), and fails the
// test with what is missing after within.
func (w *World) poll(within time.Duration, check func() (missing string)) {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for {
		missing := check()
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("within %s: %s", within, missing)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Plan asks the daemon what req would do (its refusal, if any), as the
// dashboard's modal does.
func (w *World) Plan(req api.ActionRequest) api.Plan {
	w.t.Helper()
	req.DryRun = true
	ctx, cancel := w.ctx()
	defer cancel()
	p, err := w.Client.Plan(ctx, req)
	if err != nil {
		w.t.Fatalf("plan %s %s %s: %v", req.Kind, req.Service, req.Deployment, err)
	}
	return p
}

// Containers are the IDs of the containers the daemon runs (or left
// behind): those that carry its owner label, sorted.
func (w *World) Containers() []string {
	w.t.Helper()
	ctx, cancel := w.ctx()
	defer cancel()
	cs, err := w.Runtime.List(ctx, map[string]string{engine.LabelOwner: w.Daemon.Engine.Owner()})
	if err != nil {
		w.t.Fatalf("list the daemon's containers: %v", err)
	}
	ids := make([]string, 0, len(cs))
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

// Snapshot is what a World holds at one moment: every service's deployment
// records and the daemon's containers.
type Snapshot struct {
	Deployments map[string][]string // service -> "#n STATUS" newest first
	Containers  []string
}

// Snapshot records the World now. Take it once the World is settled (no
// deployment in progress, none draining).
func (w *World) Snapshot() Snapshot {
	w.t.Helper()
	ctx, cancel := w.ctx()
	defer cancel()
	svcs, err := w.Client.Services(ctx)
	if err != nil {
		w.t.Fatalf("list services: %v", err)
	}
	s := Snapshot{Deployments: map[string][]string{}, Containers: w.Containers()}
	for _, svc := range svcs {
		for _, d := range w.Deployments(svc.Name) {
			s.Deployments[svc.Name] = append(s.Deployments[svc.Name], "#"+strconv.Itoa(d.Number)+" "+d.Status)
		}
	}
	return s
}

// CreatedNothing fails the test if the World holds a deployment record or a
// container that before did not, or lost one. Call it only after a positive
// signal that the action under test has finished (its refusal on screen, the
// answer of a later request that went the same way): it is not a wait.
func (w *World) CreatedNothing(before Snapshot) {
	w.t.Helper()
	now := w.Snapshot()
	for svc, ds := range now.Deployments {
		if !slices.Equal(ds, before.Deployments[svc]) {
			w.t.Errorf("%s's deployments are %v, were %v: something was created or changed", svc, ds, before.Deployments[svc])
		}
	}
	if !slices.Equal(now.Containers, before.Containers) {
		w.t.Errorf("the daemon's containers are %v, were %v", now.Containers, before.Containers)
	}
}

// Settle waits until service has no deployment in progress or draining and
// exactly its ACTIVE deployment's container runs: the state after which a
// Snapshot stays true until someone acts.
func (w *World) Settle(service string) {
	w.t.Helper()
	w.poll(DeployWithin, func() string {
		ds := w.Deployments(service)
		if slices.ContainsFunc(ds, func(d api.Deployment) bool {
			return d.Status == "DEPLOYING" || d.Status == "HEALTH_CHECKING" || d.Status == "DRAINING"
		}) {
			return fmt.Sprintf("%s did not settle: %v", service, ds)
		}
		return ""
	})
}

// RemoveImage removes an image from the local Docker engine, as an
// operator's `docker rmi` would: its deployments lose their badge.
func (w *World) RemoveImage(tag string) {
	w.t.Helper()
	testdocker.RemoveImage(w.t, w.Runtime, tag)
	ctx, cancel := w.ctx()
	defer cancel()
	if _, err := w.Runtime.InspectImage(ctx, tag); err == nil {
		w.t.Fatalf("image %s is still in the engine after its removal", tag)
	}
}

// WaitAvailability waits until the daemon reports the image of service's
// deployment #n as state (it learns of a removed image from Docker's events).
func (w *World) WaitAvailability(service string, n int, state string) {
	w.t.Helper()
	w.poll(DeployWithin, func() string {
		if d := w.Number(service, n); d.ImageAvailability != state {
			return fmt.Sprintf("%s #%d: image %s, want %s", service, n, d.ImageAvailability, state)
		}
		return ""
	})
}

// Get requests path through the edge router for service's default domain
// and returns the body of a 200 answer.
func (w *World) Get(service, path string) string {
	w.t.Helper()
	status, body := w.through(http.MethodGet, service, path)
	if status != http.StatusOK {
		w.t.Fatalf("GET %s.localhost%s through the router: %d %q", service, path, status, body)
	}
	return strings.TrimSpace(body)
}

// Post sends a POST to path through the edge router for service's default
// domain (the sample app's knobs: /health?fail=1 makes its health check
// fail) and fails the test unless it is answered with a 2xx.
func (w *World) Post(service, path string) {
	w.t.Helper()
	if status, body := w.through(http.MethodPost, service, path); status/100 != 2 {
		w.t.Fatalf("POST %s.localhost%s through the router: %d %q", service, path, status, body)
	}
}

// through sends a request with no body to path through the edge router for
// service's default domain, on a connection of its own, and returns the
// answer's status and body.
func (w *World) through(method, service, path string) (int, string) {
	w.t.Helper()
	req, err := http.NewRequest(method, "http://"+w.Daemon.RouterAddr()+path, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Host = service + ".localhost"
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s%s through the router: %v", method, req.Host, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		w.t.Fatalf("%s %s%s through the router: reading the answer: %v", method, req.Host, path, err)
	}
	return resp.StatusCode, string(body)
}

// Counting is the daemon's API client as a dashboard's Backend, counting
// what the dashboard asks of it: a viewer's keys must reach no Plan or Act,
// a live update no Deployments read.
type Counting struct {
	*api.Client
	Plans, Acts, DeploymentsCalls atomic.Int64
	// Subscribers is how many event streams are open through it: each
	// ends when its dashboard's context does.
	Subscribers atomic.Int64
}

// Backend is the World's API client, counting.
func (w *World) Backend() *Counting { return &Counting{Client: w.Client} }

// Plan counts and asks the daemon.
func (c *Counting) Plan(ctx context.Context, req api.ActionRequest) (api.Plan, error) {
	c.Plans.Add(1)
	return c.Client.Plan(ctx, req)
}

// Act counts and asks the daemon.
func (c *Counting) Act(ctx context.Context, req api.ActionRequest) (api.Deployment, error) {
	c.Acts.Add(1)
	return c.Client.Act(ctx, req)
}

// Deployments counts and asks the daemon.
func (c *Counting) Deployments(ctx context.Context, service string, limit, before int) ([]api.Deployment, error) {
	c.DeploymentsCalls.Add(1)
	return c.Client.Deployments(ctx, service, limit, before)
}

// Subscribe asks the daemon for its event stream and counts it open until
// the daemon's stream ends.
func (c *Counting) Subscribe(ctx context.Context) (<-chan api.Event, error) {
	in, err := c.Client.Subscribe(ctx)
	if err != nil {
		return nil, err
	}
	c.Subscribers.Add(1)
	out := make(chan api.Event)
	go func() {
		defer c.Subscribers.Add(-1)
		defer close(out)
		for ev := range in {
			select {
			case out <- ev:
			case <-ctx.Done():
				for range in { // until the client closes it
				}
				return
			}
		}
	}()
	return out, nil
}
