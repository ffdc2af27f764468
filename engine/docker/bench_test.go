package docker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
)

// BenchmarkContainerStartToReady measures one bare container cycle as the
// engine runs it: Start (create, start, read the host port), probe /healthz
// on 127.0.0.1 until 200, Stop (SIGTERM, wait, remove). It reports the total
// and its parts: ready-ms/op (Start + first good probe) is the baseline for a
// deploy's or rollback's own overhead.
func BenchmarkContainerStartToReady(b *testing.B) {
	rt := testdocker.Require(b)
	image := testdocker.SampleImage(b, rt, "bench")
	labels := map[string]string{testdocker.TestLabel: "1", "dev.clank.test.run": testdocker.RandomSuffix()}
	testdocker.Cleanup(b, rt, labels)
	ctx := context.Background()

	var ready, stop time.Duration
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		c, err := rt.Start(ctx, engine.ContainerSpec{
			Name:   fmt.Sprintf("clank-test-bench-%s-%d", labels["dev.clank.test.run"], i),
			Image:  image,
			Port:   testdocker.SampleAppPort,
			Labels: labels,
		})
		if err != nil {
			b.Fatal(err)
		}
		testdocker.WaitOK(b, fmt.Sprintf("http://127.0.0.1:%d/healthz", c.HostPort), 30*time.Second)
		t1 := time.Now()
		if err := rt.Stop(ctx, c.ID, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		ready += t1.Sub(t0)
		stop += time.Since(t1)
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64((ready+stop).Milliseconds())/n, "ms/op")
	b.ReportMetric(float64(ready.Milliseconds())/n, "ready-ms/op")
	b.ReportMetric(float64(stop.Milliseconds())/n, "stop-ms/op")
}
