package engine

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clank-dev/clank/store"
)

// BenchmarkReadinessDetection: how long after a container becomes ready the
// engine's probe loop sees it (goal < 100 ms). The "container" is an HTTP
// server on loopback that answers 503 until its ready time, then 200.
func BenchmarkReadinessDetection(b *testing.B) {
	var readyAt atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if time.Now().UnixNano() < readyAt.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	// The pass is recorded as a lifecycle step: the engine needs a store.
	st, err := store.Open(filepath.Join(b.TempDir(), "clank.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	e := &Engine{probeClient: newProbeClient(), store: st, log: slog.New(slog.DiscardHandler)}
	d := store.Deployment{Config: store.Config{
		Health:        store.HealthCheck{Path: "/healthz", Interval: time.Second, Timeout: time.Second},
		DeployTimeout: 10 * time.Second,
	}}
	var total time.Duration
	for i := 0; i < b.N; i++ {
		// Ready 30-330 ms from now: within aliveEvery, so no runtime is needed.
		ready := time.Now().Add(30*time.Millisecond + time.Duration(i%10)*30*time.Millisecond)
		readyAt.Store(ready.UnixNano())
		if err := e.waitHealthy(context.Background(), d, "", port); err != nil {
			b.Fatal(err)
		}
		total += time.Since(ready)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms-late/op")
}
