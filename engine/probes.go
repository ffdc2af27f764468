package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clank-dev/clank/store"
)

// Probe reports (docs/architecture.md, "The cutover"): while a deployment is
// HEALTH_CHECKING, its health check's results are streamed as they come
// (EventProbe: "GET /healthz → HTTP 500 (attempt 3 of 30)"), once per
// attempt and whenever the result changes. An attempt is one configured
// interval of the deploy timeout; early on the engine probes faster than
// that (a container ready at once is seen within probeFastCap), and an
// attempt's result is its last probe's. How the check ended is a lifecycle
// step, recorded and streamed alike: the pass with its attempt, or the
// failure, whose reason names the last results.

// probeReport follows one deployment's health check.
type probeReport struct {
	e        *Engine
	d        store.Deployment
	start    time.Time
	interval time.Duration
	of       int // attempts within the deploy timeout

	shown  int    // the last attempt streamed
	result string // its result
}

func (e *Engine) newProbeReport(d store.Deployment) *probeReport {
	cfg := d.Config
	interval := max(cfg.Health.Interval, time.Millisecond)
	of := max(int((cfg.DeployTimeout+interval-1)/interval), 1)
	return &probeReport{e: e, d: d, start: time.Now(), interval: interval, of: of}
}

func (r *probeReport) attempt() int {
	return min(int(time.Since(r.start)/r.interval)+1, r.of)
}

// probeResult says what a failed probe got: "HTTP 500", or why it got
// nothing.
func probeResult(err error) string {
	if errors.Is(err, errUnhealthy) {
		return strings.TrimPrefix(err.Error(), errUnhealthy.Error()+": ")
	}
	return err.Error()
}

// failed streams a failed probe's result, once per attempt and when it
// changes.
func (r *probeReport) failed(err error) {
	n, result := r.attempt(), probeResult(err)
	if n == r.shown && result == r.result {
		return
	}
	r.shown, r.result = n, result
	d := r.d
	r.e.publish(Event{Type: EventProbe, Service: d.Service, Deployment: &d, Status: d.Status,
		Message: fmt.Sprintf("GET %s → %s (attempt %d of %d)", d.Config.Health.Path, result, n, r.of)})
}

// passed records the probe that passed as a lifecycle step, and streams it.
func (r *probeReport) passed(ctx context.Context) {
	d := r.d
	msg := fmt.Sprintf("GET %s passed (attempt %d of %d)", d.Config.Health.Path, r.attempt(), r.of)
	if _, err := r.e.store.AddEvent(context.WithoutCancel(ctx), store.Event{DeploymentID: d.ID, Service: d.Service,
		Status: d.Status, Message: msg}); err != nil {
		r.e.log.Warn("record the health check's pass", "deployment", d.ID, "err", err)
		return
	}
	r.e.publishDeployment(d, msg)
}
