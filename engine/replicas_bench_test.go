package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// BenchmarkReplicaOutOfRotation measures how long after the Docker engine
// reports a replica's death (its die event, read from Docker's own event
// stream here) the engine has switched the route to the replicas left
// (goal < 1 s): the router is the real one, with the time of each switch
// noted. Each round kills the next of 4 replicas, so that no replica's
// restart backoff grows long, and waits for all 4 to be healthy again.
func BenchmarkReplicaOutOfRotation(b *testing.B) {
	routes := &routeLog{}
	h := newHarness(b, withRouteLog(routes))
	ctx := context.Background()
	v1 := testdocker.SampleImage(b, h.rt, "v1")
	defer func() { h.eng.Close() }()
	h.service("web", v1, nil)
	h.scaled("web", 4)
	d := h.act(deploy("web"))
	h.healthyReplicas(d.ID, 4, 30*time.Second)
	var total, raw, worst, killToDie time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cur, _ := h.store.GetDeployment(ctx, d.ID)
		victim, _ := cur.Replica(i % 4)
		sctx, cancel := context.WithCancel(ctx)
		docker, errs := h.rt.Events(sctx)
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
		killed := time.Now()
		if _, err := h.rt.Client().ContainerKill(ctx, victim.ContainerID, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
			b.Fatal(err)
		}
		died := dieEvent(b, docker, victim.ContainerID)
		out := routes.left(b, fmt.Sprintf("127.0.0.1:%d", victim.HostPort), killed, 10*time.Second)
		cancel()
		// The engine's own copy of the event may arrive before the
		// benchmark's: then the switch came first (raw < 0), counted as 0.
		took := max(out.Sub(died), 0)
		raw += out.Sub(died)
		total += took
		worst = max(worst, took)
		killToDie += died.Sub(killed)
		b.StopTimer()
		h.healthyReplicas(d.ID, 4, 60*time.Second)
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-after-die")
	b.ReportMetric(float64(worst.Microseconds())/1000, "ms-worst")
	b.ReportMetric(float64(raw.Microseconds())/float64(b.N)/1000, "ms-raw")
	b.ReportMetric(float64(killToDie.Microseconds())/float64(b.N)/1000, "ms-kill-to-die")
	if worst >= time.Second {
		b.Errorf("a dead replica stayed in the route %s after Docker reported it, want < 1 s", worst)
	}
}

// BenchmarkCutoverReplicas measures a cutover's wall time (request ->
// ACTIVE: start, probe until healthy, verify, switch) with 1 replica and
// with 4, alternating rounds in the same run so that both see the same
// background load. A round deploys the other image over the ACTIVE one and
// waits for the replaced deployment's drain before the next.
func BenchmarkCutoverReplicas(b *testing.B) {
	h := newHarness(b, func(o *engine.Options) { o.DrainTimeout = time.Second })
	v1 := testdocker.SampleImage(b, h.rt, "v1")
	v2 := testdocker.SampleImage(b, h.rt, "v2")
	defer func() { h.eng.Close() }()
	counts := []int{1, 4}
	for _, n := range counts {
		name := fmt.Sprintf("web%d", n)
		h.service(name, v1, nil)
		h.scaled(name, n)
		h.act(deploy(name))
	}
	images := []string{v2, v1}
	took := map[int]time.Duration{}
	round := func(n, i int) {
		name := fmt.Sprintf("web%d", n)
		svc, _ := h.eng.Service(context.Background(), name)
		start := time.Now()
		d := h.act(engine.Request{Kind: store.KindDeploy, Service: name, Image: images[i%2]})
		took[n] += time.Since(start)
		if d.Status != store.StatusActive || len(d.Containers) != n {
			b.Fatalf("%s: %s with %d containers: %s", name, d.Status, len(d.Containers), d.FailureReason)
		}
		b.StopTimer()
		h.waitStatus(svc.ActiveDeploymentID, store.StatusInactive, 30*time.Second)
		b.StartTimer()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%2 == 0 {
			round(1, i)
			round(4, i)
		} else {
			round(4, i)
			round(1, i)
		}
	}
	one, four := took[1]/time.Duration(b.N), took[4]/time.Duration(b.N)
	b.ReportMetric(float64(one.Microseconds())/1000, "ms-1-replica")
	b.ReportMetric(float64(four.Microseconds())/1000, "ms-4-replicas")
	b.ReportMetric(float64(four)/float64(one), "x-4-vs-1")
}
