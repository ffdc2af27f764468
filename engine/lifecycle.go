package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/clank-dev/clank/store"
)

// Readiness probing: at once, then every probeMin doubling up to probeFastCap
// for the first probeFastFor, then backing off toward the configured interval.
// A container that becomes ready is seen within probeFastCap.
const (
	probeMin     = 2 * time.Millisecond
	probeFastCap = 20 * time.Millisecond
	probeFastFor = 5 * time.Second
	// aliveEvery is how often a failing probe checks that the container still runs.
	aliveEvery = 500 * time.Millisecond
	// PullTimeout bounds pulling a deployment's image in DEPLOYING; a
	// registry that never answers fails the deployment instead of holding
	// the service forever.
	PullTimeout = 10 * time.Minute
	// maxReason bounds a failure reason (it is one line: logs go to `clank logs`).
	maxReason = 400
)

// failDeployment ends d as FAILED with reason (on one line, and naming the
// daemon's stop when that is why), after giving the service back the
// certificates it wanted before d and running release, which removes what d
// started. Both runtimes' deployments end this way.
func (e *Engine) failDeployment(ctx context.Context, d store.Deployment, prevDomains []string, reason string, release func()) {
	bg := context.WithoutCancel(ctx)
	e.certs.Want(d.Service, prevDomains)
	reason = oneLine(reason)
	if ctx.Err() != nil {
		reason = "the daemon stopped during the deployment (" + reason + ")"
	}
	release()
	fd, err := e.store.Fail(bg, d.ID, reason)
	if err != nil {
		e.log.Error("record failure", "deployment", d.ID, "err", err)
		return
	}
	e.log.Warn("deployment failed", "service", d.Service, "deployment", d.ID, "reason", reason)
	e.publishDeployment(fd, reason)
}

// run takes a created deployment through DEPLOYING -> HEALTH_CHECKING ->
// ACTIVE with all its replicas, switches the router to them, puts them under
// supervision (and its watch window), and drains the previous deployment's
// replicas together, which may stay warm.
func (e *Engine) run(ctx context.Context, d store.Deployment, prev *store.Deployment) {
	if e.swarm != nil {
		e.runSwarm(ctx, d, prev)
		return
	}
	defer e.release(d.Service, d.ID)
	cfg := d.Config
	n := replicaCount(d)
	// Store writes after a failure must happen even while the engine stops.
	bg := context.WithoutCancel(ctx)
	var prevDomains []string
	if prev != nil {
		prevDomains = prev.Config.Domains
	}
	// Certificates for the new domains are obtained while the deployment runs its
	// course; the ACTIVE deployment's stay until the cutover.
	e.certs.Want(d.Service, slices.Concat(prevDomains, cfg.Domains))
	cs := make([]Container, n) // by slot; a zero one has no container yet
	fail := func(reason string) {
		e.failDeployment(ctx, d, prevDomains, reason, func() {
			var ids []string
			for _, c := range cs {
				ids = append(ids, c.ID)
			}
			e.stopReplicas(bg, d, ids, 0)
		})
	}
	healthChecking := func(msg string) bool {
		if d.Status == store.StatusHealthChecking {
			return true
		}
		nd, err := e.store.SetStatus(bg, d.ID, store.StatusHealthChecking, msg)
		if err != nil {
			fail(fmt.Sprintf("record status: %v", err))
			return false
		}
		d = nd
		e.publishDeployment(d, msg)
		return true
	}

	adopted := e.adoptForRollback(ctx, d)
	if len(adopted) > 0 {
		var ports []int
		for slot, c := range adopted {
			cs[slot] = c
			ports = append(ports, c.HostPort)
		}
		slices.Sort(ports)
		if !healthChecking(fmt.Sprintf("adopted the running %s of a warm standby; probing GET %s on %s", containersWord(len(adopted)), cfg.Health.Path, portList(ports))) {
			return
		}
		for slot, c := range adopted {
			report := e.newProbeReport(d)
			if err := e.probeOnce(ctx, fmt.Sprintf("http://127.0.0.1:%d%s", c.HostPort, cfg.Health.Path), cfg.Health.Timeout); err != nil {
				report.failed(err)
				e.log.Warn("adopted warm standby failed its probe: starting a new container", "deployment", d.ID, "replica", slot, "err", err)
				e.rt.Stop(bg, c.ID, 0)
				cs[slot] = Container{}
			} else {
				report.passed(ctx)
			}
		}
	}
	var missing []int
	for slot, c := range cs {
		if c.ID == "" {
			missing = append(missing, slot)
		}
	}
	if len(missing) > 0 {
		if err := e.ensureImage(ctx, &d); err != nil {
			fail(err.Error())
			return
		}
		if d.Schema == "" {
			e.recordSchema(bg, &d)
		}
		started, err := e.startReplicas(ctx, d, missing)
		var ports []int
		for i, slot := range missing {
			cs[slot] = started[i]
			ports = append(ports, started[i].HostPort)
		}
		if err != nil {
			fail(err.Error())
			return
		}
		if !healthChecking(fmt.Sprintf("%s started; probing GET %s on %s", containersWord(len(missing)), cfg.Health.Path, portList(ports))) {
			return
		}
		if err := e.waitReplicasHealthy(ctx, d, missing, started); err != nil {
			fail(err.Error())
			return
		}
	}
	// The router sends requests to these ports only once Docker has said that
	// the container behind each is this deployment's.
	backends := make([]string, n)
	for slot, c := range cs {
		rec := store.Replica{Slot: slot, ContainerID: c.ID, HostPort: c.HostPort, Label: labelOf(c)}
		if vc, err := e.verify(ctx, d, rec); err != nil || !vc.Running || vc.HostPort != c.HostPort {
			fail(fmt.Sprintf("container check before the cutover: %s%v", replicaPrefix(d, slot), describeCheck(vc, err)))
			return
		}
		backends[slot] = backendAddr(c.HostPort)
	}

	e.cutOver(ctx, d, prevDomains, backends, func(active store.Deployment, w *watch) { e.supervise(active, cs, w) }, fail)
}

// cutOver switches d's service to d, whose backends all passed their
// health check: the watch window is recorded, the router switches, the
// store makes d ACTIVE, superviseNew puts it under supervision, the service
// is released, and the previous deployment drains (on Swarm, on the
// backends it had). fail undoes a failed activation's deployment.
func (e *Engine) cutOver(ctx context.Context, d store.Deployment, prevDomains, backends []string,
	superviseNew func(active store.Deployment, w *watch), fail func(string)) {
	cfg := d.Config
	bg := context.WithoutCancel(ctx)
	// The service's policy at the cutover is the one this deployment is
	// watched with, whatever changes later.
	policy := store.DefaultPolicy()
	if svc, err := e.store.GetService(bg, d.Service); err == nil {
		policy = svc.Policy
	}

	// The watch window is recorded before the activation, so that once the
	// store says ACTIVE only quick steps remain before the service is free.
	var w *watch
	if policy.WatchWindow > 0 {
		until := time.Now().Add(policy.WatchWindow)
		if _, err := e.store.StartWatch(bg, d.ID, until, policy); err != nil {
			e.log.Error("record watch window", "deployment", d.ID, "err", err)
		}
		w = newWatch(policy, until)
	}
	// Cutover: the router first (new requests go to green at once), then the
	// store. A crash between the two leaves green un-ACTIVE in the store:
	// reconcile fails it and routes back to blue, which is still running.
	prevOwner, previousBackends := e.takeRoute(d.Service, d.ID, cfg.Domains, backends)
	active, old, err := e.store.Activate(bg, d.ID)
	if err != nil {
		if len(previousBackends) > 0 {
			e.giveBackRoute(d.Service, d.ID, prevOwner, prevDomains, previousBackends)
		} else {
			e.giveBackRoute(d.Service, d.ID, prevOwner, cfg.Domains, nil) // 503, not a dead port
		}
		e.kickSupervised(prevOwner) // look again, and route it if it runs
		fail(fmt.Sprintf("record activation: %v", err))
		return
	}
	e.certs.Want(d.Service, cfg.Domains)
	superviseNew(active, w)
	e.release(d.Service, d.ID) // the next deployment may start while blue drains
	e.log.Info("deployment active", "service", d.Service, "deployment", d.ID, "number", d.Number, "replicas", replicaCount(d))
	e.publishDeployment(active, "activated")
	if old.ID != "" {
		// Its supervisor no longer restarts or routes it (the route is not
		// its own since takeRoute); it may have started a replica again on
		// another port meanwhile.
		e.unsupervise(old.ID)
		if fresh, err := e.store.GetDeployment(bg, old.ID); err == nil {
			old = fresh
		}
		e.publishDeployment(old, fmt.Sprintf("draining: replaced by #%d", active.Number))
		var warmUntil time.Time
		if w != nil && policy.KeepWarm && e.swarm == nil { // no warm standby on Swarm (docs/scale-out.md)
			warmUntil = w.until
		}
		drainFrom := backendsOf(old)
		if e.swarm != nil {
			drainFrom = previousBackends // its tasks are Swarm's, not in the store
		}
		e.drain(ctx, old, drainFrom, warmUntil)
	}
	if e.opts.KeepImages > 0 {
		if _, err := e.Prune(ctx, d.Service, e.opts.KeepImages); err != nil {
			e.log.Warn("prune images after deploy", "service", d.Service, "err", err)
		}
	}
}

// containersWord says "container" or "3 containers".
func containersWord(n int) string {
	if n == 1 {
		return "container"
	}
	return fmt.Sprintf("%d containers", n)
}

// portList says where containers answer: "127.0.0.1:32768" or
// "127.0.0.1:32768, :32769".
func portList(ports []int) string {
	var b strings.Builder
	for i, p := range ports {
		if i == 0 {
			fmt.Fprintf(&b, "127.0.0.1:%d", p)
		} else {
			fmt.Fprintf(&b, ", :%d", p)
		}
	}
	return b.String()
}

// describeCheck says why a container failed verify.
func describeCheck(c Container, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case !c.Running:
		return "the container is not running (" + exitDescription(c) + ")"
	}
	return fmt.Sprintf("the container is published on port %d now", c.HostPort)
}

// adoptForRollback adopts the warm standby a rollback targets, if it is
// one: its running containers, by slot.
func (e *Engine) adoptForRollback(ctx context.Context, d store.Deployment) map[int]Container {
	if d.Kind != store.KindRollback || d.SourceDeploymentID == "" {
		return nil
	}
	target, err := e.store.GetDeployment(ctx, d.SourceDeploymentID)
	if err != nil {
		return nil
	}
	return e.adoptStandby(ctx, d, target)
}

// drain lets the replaced deployment's replicas finish their in-flight
// requests on backends together (bounded by the drain timeout), then keeps
// its containers warm until warmUntil (if not zero, and they still run) or
// stops and removes them (on Swarm, its Swarm service).
func (e *Engine) drain(ctx context.Context, old store.Deployment, backends []string, warmUntil time.Time) {
	bg := context.WithoutCancel(ctx)
	e.drainBackends(ctx, old, backends)
	if !warmUntil.IsZero() && ctx.Err() == nil && e.keepWarm(ctx, old, warmUntil) {
		return
	}
	e.removeContainers(bg, old, e.opts.StopGrace)
	msg := "drained; " + containerWord(len(old.Containers)) + " removed"
	if e.swarm != nil {
		msg = "drained; Swarm service " + SwarmServiceName(old) + " removed"
	}
	done, err := e.store.SetStatus(bg, old.ID, store.StatusInactive, msg)
	if err != nil {
		e.log.Error("record inactive", "deployment", old.ID, "err", err)
		return
	}
	e.publishDeployment(done, msg)
}

// containerWord says "container" for one (or none), "containers" for more.
func containerWord(n int) string {
	if n > 1 {
		return "containers"
	}
	return "container"
}

func (e *Engine) labels(d store.Deployment) map[string]string {
	return map[string]string{
		LabelManaged:    "true",
		LabelOwner:      e.owner,
		LabelService:    d.Service,
		LabelDeployment: d.ID,
	}
}

func (e *Engine) haveImage(ctx context.Context, d store.Deployment) bool {
	_, err := e.rt.InspectImage(ctx, PinnedRef(d.ImageSource, d.Config.Image, d.ImageDigest))
	return err == nil
}

// ensureImage pulls d's image (by digest when one is pinned) unless the
// local engine has it, bounded by PullTimeout, as DEPLOYING does.
func (e *Engine) ensureImage(ctx context.Context, d *store.Deployment) error {
	if d.ImageDigest != "" && e.haveImage(ctx, *d) {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, PullTimeout)
	defer cancel()
	err := e.pull(pctx, d)
	if err != nil && pctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
		err = fmt.Errorf("pull of %s did not finish within %s", d.Config.Image, PullTimeout)
	}
	return err
}

// pull fetches a registry image (by digest when one is pinned) and records
// the digest it resolved to.
func (e *Engine) pull(ctx context.Context, d *store.Deployment) error {
	if d.ImageSource == store.SourceLocal {
		return fmt.Errorf("image %s (%s) is no longer in the local Docker engine", d.Config.Image, ShortDigest(d.ImageDigest))
	}
	ref := PinnedRef(d.ImageSource, d.Config.Image, d.ImageDigest)
	if err := e.rt.PullImage(ctx, ref); err != nil {
		return err // the runtime says which image it could not pull
	}
	if d.ImageDigest != "" {
		return nil
	}
	digest, source, err := e.resolveImage(ctx, d.Config.Image)
	if err != nil {
		return err
	}
	if digest == "" {
		return fmt.Errorf("pull %s: no digest for the pulled image", ref)
	}
	if err := e.store.SetImage(ctx, d.ID, digest, source); err != nil {
		return fmt.Errorf("record image digest: %v", err)
	}
	d.ImageDigest, d.ImageSource = digest, source
	return nil
}

// waitHealthy probes the container's health path over loopback until it
// answers 2xx/3xx, the container exits, or the deploy timeout ends.
func (e *Engine) waitHealthy(ctx context.Context, d store.Deployment, containerID string, hostPort int) error {
	cfg := d.Config
	ctx, cancel := context.WithTimeout(ctx, cfg.DeployTimeout)
	defer cancel()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", hostPort, cfg.Health.Path)
	report := e.newProbeReport(d)
	start := time.Now()
	lastAlive := start
	wait := probeMin
	var last, answered error // answered: the last probe the app answered (with a bad status)
	for {
		err := e.probeOnce(ctx, url, cfg.Health.Timeout)
		if err == nil {
			report.passed(ctx)
			return nil
		}
		if ctx.Err() == nil {
			report.failed(err)
		}
		last = err
		if errors.Is(err, errUnhealthy) {
			answered = err
		}
		if time.Since(lastAlive) >= aliveEvery && containerID != "" {
			lastAlive = time.Now()
			c, ierr := e.rt.Inspect(ctx, containerID)
			if errors.Is(ierr, ErrContainerNotFound) {
				return fmt.Errorf("container was removed before its health check passed (last probe: %v)", last)
			}
			if ierr == nil && !c.Running {
				return fmt.Errorf("container exited before its health check passed (%s; last probe: %v)", exitDescription(c), last)
			}
		}
		limit := min(cfg.Health.Interval, probeFastCap)
		if time.Since(start) > probeFastFor {
			limit = cfg.Health.Interval
		}
		wait = min(wait*2, limit)
		select {
		case <-ctx.Done():
			if answered != nil && answered != last {
				return fmt.Errorf("health check GET %s did not pass within %s: %v (last probe: %v)", cfg.Health.Path, cfg.DeployTimeout, answered, last)
			}
			return fmt.Errorf("health check GET %s did not pass within %s: %v", cfg.Health.Path, cfg.DeployTimeout, last)
		case <-time.After(wait):
		}
	}
}

var errUnhealthy = errors.New("unhealthy")

func (e *Engine) probeOnce(ctx context.Context, url string, timeout time.Duration) error {
	return probeWith(ctx, e.probeClient, url, timeout)
}

// probeWith sends one health probe with client: nil when it answers 2xx or
// 3xx, an error that wraps errUnhealthy when it answers anything else, and
// another error when it does not answer.
func probeWith(ctx context.Context, client *http.Client, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", probeUserAgent)
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s", timeout)
		}
		if inner := errors.Unwrap(err); inner != nil {
			return inner // drop the url.Error prefix: the caller names the path
		}
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("%w: HTTP %d", errUnhealthy, resp.StatusCode)
	}
	return nil
}

// oneLine folds a failure reason onto one line ("a | b") and bounds it: the
// CLI prints it as its one-line error, and a container's log is for `clank logs`.
func oneLine(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	s = strings.Join(slices.DeleteFunc(lines, func(l string) bool { return l == "" }), " | ")
	if r := []rune(s); len(r) > maxReason {
		s = string(r[:maxReason-1]) + "…"
	}
	return s
}
