package engine_test

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// The goals of "After the cutover" (issue 7), measured with the real Docker
// engine; BENCHMARKS.md records the numbers.

// BenchmarkWarmRollback measures a rollback by hand from the request to
// ACTIVE when its target is a warm standby (goal < 100 ms), against a cold
// rollback (a new container) in the same run, alternating which goes first.
// Each round's rollback makes the deployment it replaces the next standby.
func BenchmarkWarmRollback(b *testing.B) {
	h := newHarness(b)
	v1 := testdocker.SampleImage(b, h.rt, "v1")
	v2 := testdocker.SampleImage(b, h.rt, "v2")
	warm := store.DefaultPolicy() // keep warm, for a window longer than the run
	warm.WatchWindow = time.Hour
	for _, name := range []string{"warm", "cold"} {
		h.service(name, v1, nil)
		if name == "warm" {
			h.setPolicy(name, warm)
		}
		h.act(deploy(name))
		h.act(engine.Request{Kind: store.KindDeploy, Service: name, Image: v2})
	}
	// ready waits until the service's replaced deployment has drained (and,
	// for "warm", is the standby), so that a round shares the engine with no
	// drain or stop.
	ready := func(service string) {
		for _, d := range h.history(service) {
			if d.Status == store.StatusDraining {
				got := h.waitStatus(d.ID, store.StatusInactive, 30*time.Second)
				if service == "warm" && got.WarmUntil == nil {
					b.Fatalf("#%d of warm is not kept warm", got.Number)
				}
			}
		}
	}
	rollback := func(service string) time.Duration {
		ready(service)
		start := time.Now()
		d := h.act(engine.Request{Kind: store.KindRollback, Service: service})
		took := time.Since(start)
		if d.Status != store.StatusActive {
			b.Fatalf("rollback of %s: %s %s", service, d.Status, d.FailureReason)
		}
		if adopted := d.ContainerDeployment(d.Containers[0]) != d.ID; adopted != (service == "warm") {
			b.Fatalf("rollback of %s: adopted a standby: %v", service, adopted)
		}
		return took
	}
	var warmTotal, coldTotal time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			warmTotal += rollback("warm")
			coldTotal += rollback("cold")
		} else {
			coldTotal += rollback("cold")
			warmTotal += rollback("warm")
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(warmTotal.Microseconds())/n/1000, "warm-ms/op")
	b.ReportMetric(float64(coldTotal.Microseconds())/n/1000, "cold-ms/op")
	b.ReportMetric(float64(coldTotal)/float64(warmTotal), "cold/warm")
}

// history lists service's deployments.
func (h *harness) history(service string) []store.Deployment {
	h.t.Helper()
	ds, err := h.store.ListDeployments(context.Background(), service, 0, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return ds
}

// BenchmarkCrashDetection measures, from the Docker engine's own time of a
// die event (`docker kill` of the ACTIVE container), when the engine has the
// deployment crashed (goal < 1 s) and when the first restart begins (goal
// < 1.5 s; the backoff is 1 s). Each round is a fresh deployment, so that
// each crash is its first.
func BenchmarkCrashDetection(b *testing.B) {
	h := newHarness(b)
	ctx := context.Background()
	h.service("web", testdocker.SampleImage(b, h.rt, "v1"), nil)
	var seen, restarted, worstSeen, worstRestart time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		d := h.act(deploy("web"))
		events := h.eng.Subscribe(ctx)
		died := dockerDie(b, h, d.ContainerID)
		b.StartTimer()
		if _, err := h.rt.Client().ContainerKill(ctx, d.ContainerID, client.ContainerKillOptions{Signal: "SIGKILL"}); err != nil {
			b.Fatal(err)
		}
		crashed := waitEvent(b, events, 10*time.Second, runtimeIs(d.ID, engine.RuntimeCrashed))
		restarting := waitEvent(b, events, 10*time.Second, runtimeIs(d.ID, engine.RuntimeRestarting))
		die := <-died
		s, r := crashed.At.Sub(die.At), restarting.At.Sub(die.At)
		seen, restarted = seen+s, restarted+r
		worstSeen, worstRestart = max(worstSeen, s), max(worstRestart, r)
		b.StopTimer()
		waitEvent(b, events, 10*time.Second, runtimeIs(d.ID, engine.RuntimeHealthy))
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(float64(seen.Microseconds())/n/1000, "seen-ms/op")
	b.ReportMetric(float64(worstSeen.Microseconds())/1000, "worst-seen-ms")
	b.ReportMetric(float64(restarted.Microseconds())/n/1000, "restart-ms/op")
	b.ReportMetric(float64(worstRestart.Microseconds())/1000, "worst-restart-ms")
}

// BenchmarkSupervisionIdle measures what supervision costs: the process's
// CPU time (getrusage, user + system) over a window, as a share of one
// core, with 50 idle ACTIVE services probed at the default interval (1 s)
// against the same engine with none (goal < 1% of one core). The router and
// the test's own goroutines are in both. With CLANK_BENCH_WATCHED=1 the
// services are inside their watch window (the first 5 minutes after a
// cutover, whose watch reads the router's counts every second too); by
// default they are past it, as a service is once its deploy is behind it.
func BenchmarkSupervisionIdle(b *testing.B) {
	const services = 50
	const window = 10 * time.Second
	h := newHarness(b)
	v1 := testdocker.SampleImage(b, h.rt, "v1")
	// The engine stops before the image and the fifty containers go, so
	// that no supervisor starts one again meanwhile.
	b.Cleanup(func() { h.eng.Close() })
	// share is the CPU time of a window as a share of one core; switches
	// counts the context switches of the process's threads in the windows
	// (each a thread put to sleep and woken again).
	var switches int64
	share := func() float64 {
		start, wall, sw := cpuTime(b), time.Now(), contextSwitches(b)
		time.Sleep(window) // the window measured: idle by design
		switches += contextSwitches(b) - sw
		return float64(cpuTime(b)-start) / float64(time.Since(wall)) * 100
	}
	b.StopTimer()
	empty := share()
	emptySwitches := switches
	switches = 0
	for i := range services {
		name := fmt.Sprintf("idle%02d", i)
		h.service(name, v1, nil)
		if os.Getenv("CLANK_BENCH_WATCHED") != "1" {
			h.setPolicy(name, store.Policy{Watch5xx: 0.5, WatchFailures: 3}) // no watch window
		}
		interval := engine.DefaultHealthInterval
		if _, err := h.eng.UpdateService(context.Background(), name, engine.ServicePatch{HealthInterval: &interval}); err != nil {
			b.Fatal(err)
		}
		if d := h.act(deploy(name)); d.Status != store.StatusActive {
			b.Fatalf("%s: %s %s", name, d.Status, d.FailureReason)
		}
	}
	for i := range services {
		name := fmt.Sprintf("idle%02d", i)
		svc, err := h.eng.Service(context.Background(), name)
		if err != nil {
			b.Fatal(err)
		}
		if rs := h.eng.Runtime(svc.ActiveDeploymentID); rs == nil || rs.State != engine.RuntimeHealthy {
			b.Fatalf("%s is not supervised healthy: %+v", name, rs)
		}
		if d, _ := h.store.GetDeployment(context.Background(), svc.ActiveDeploymentID); d.Config.Health.Interval != engine.DefaultHealthInterval {
			b.Fatalf("%s is probed every %s", name, d.Config.Health.Interval)
		}
	}
	// CLANK_BENCH_CPUPROFILE=file profiles the measured windows alone
	// (-cpuprofile would be mostly the fifty deploys before them).
	if path := os.Getenv("CLANK_BENCH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	var total float64
	b.StartTimer()
	for range b.N {
		total += share()
	}
	b.ReportMetric(total/float64(b.N), "%core-50-services")
	b.ReportMetric(empty, "%core-none")
	// What one probe costs, if the difference were the probes alone (one
	// per service per interval).
	perSecond := float64(services) * float64(time.Second) / float64(engine.DefaultHealthInterval)
	b.ReportMetric((total/float64(b.N)-empty)/100*1e6/perSecond, "cpu-µs/probe")
	b.ReportMetric((float64(switches)/float64(b.N)-float64(emptySwitches))/(perSecond*window.Seconds()), "ctxsw/probe")
	b.Logf("%d windows of %s: %.2f%% of one core with %d supervised services, %.2f%% with none", b.N, window, total/float64(b.N), services, empty)
}

// contextSwitches is how many times the process's threads gave up a CPU,
// by themselves or not.
func contextSwitches(tb testing.TB) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return ru.Nvcsw + ru.Nivcsw
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
