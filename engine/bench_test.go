package engine_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// BenchmarkRollbackOverhead measures, in the same run, a rollback's wall time
// (request -> ACTIVE) and the bare work it cannot avoid: create + start a
// container and probe it until the first successful answer. The difference
// is what Clank adds (goal < 150 ms).
func BenchmarkRollbackOverhead(b *testing.B) {
	h := newHarness(b)
	ctx := context.Background()
	v1 := testdocker.SampleImage(b, h.rt, "v1")
	v2 := testdocker.SampleImage(b, h.rt, "v2")
	h.service("web", v1, nil)
	h.act(deploy("web"))
	h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2})
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	labels := map[string]string{testdocker.TestLabel: "1", "dev.clank.bench": testdocker.RandomSuffix()}
	testdocker.Cleanup(b, h.rt, labels)

	bareRun := func(i int) time.Duration {
		// The bare baseline: create + start + probe on the engine's schedule
		// (at once, then 2 ms doubling to 20 ms). Probing much faster slows
		// the start itself: Docker's port proxy accepts and drops every
		// connection until the app listens.
		start := time.Now()
		wait := 2 * time.Millisecond
		c, err := h.rt.Start(ctx, engine.ContainerSpec{Name: fmt.Sprintf("clank-bench-%s-%d", labels["dev.clank.bench"], i), Image: v1, Port: testdocker.SampleAppPort, Labels: labels})
		if err != nil {
			b.Fatal(err)
		}
		for {
			resp, err := probe.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", c.HostPort))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			time.Sleep(wait)
			wait = min(2*wait, 20*time.Millisecond)
		}
		took := time.Since(start)
		h.rt.Stop(ctx, c.ID, 0)
		return took
	}
	rollbackRun := func() time.Duration {
		svc, _ := h.eng.Service(ctx, "web")
		start := time.Now()
		d := h.act(engine.Request{Kind: store.KindRollback, Service: "web"})
		took := time.Since(start)
		if d.Status != store.StatusActive {
			b.Fatalf("rollback %s: %s", d.Status, d.FailureReason)
		}
		// The replaced deployment drains before the next round, so that
		// neither measurement shares the engine with a container stop.
		h.waitStatus(svc.ActiveDeploymentID, store.StatusInactive, 30*time.Second)
		return took
	}
	var bare, rollback time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 { // alternate the order: neither goes first every time
			bare += bareRun(i)
			rollback += rollbackRun()
		} else {
			rollback += rollbackRun()
			bare += bareRun(i)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(bare.Milliseconds())/n, "bare-ms/op")
	b.ReportMetric(float64(rollback.Milliseconds())/n, "rollback-ms/op")
	b.ReportMetric(float64((rollback-bare).Milliseconds())/n, "overhead-ms/op")
}
