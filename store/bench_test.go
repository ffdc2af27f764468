package store

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkListNewest50: the dashboard's "newest 50 deployments of a
// service" on a service with 100,000 deployments, among other services'.
func BenchmarkListNewest50(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	mustCreateService(b, s, "web")
	mustCreateService(b, s, "api")
	bulkDeployments(b, s, "web", 100_000)
	bulkDeployments(b, s, "api", 10_000)

	for b.Loop() {
		ds, err := s.ListDeployments(ctx, "web", 50, 0)
		if err != nil {
			b.Fatal(err)
		}
		if len(ds) != 50 || ds[0].Number != 100_000 {
			b.Fatalf("got %d deployments, newest #%d", len(ds), ds[0].Number)
		}
	}
}

// BenchmarkCreateDeployment: one write transaction with numbering and the
// first event, on a service that already has 10,000 deployments.
func BenchmarkCreateDeployment(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	mustCreateService(b, s, "web")
	bulkDeployments(b, s, "web", 10_000)
	cfg := testConfig("ghcr.io/acme/web:1", "web.localhost")
	i := 0
	for b.Loop() {
		i++
		d := Deployment{ID: fmt.Sprintf("new-%d", i), Service: "web", Kind: KindDeploy, Config: cfg}
		if err := s.CreateDeployment(ctx, &d); err != nil {
			b.Fatal(err)
		}
	}
}

// bulkDeployments inserts n deployments of service numbered 1..n in one
// transaction, with realistic snapshots.
func bulkDeployments(b *testing.B, s *Store, service string, n int) {
	b.Helper()
	ctx := context.Background()
	cfg := testConfig("ghcr.io/acme/"+service+":1", service+".localhost")
	cfg.Env = map[string]string{"DATABASE_URL": "postgres://u:p@db/app", "LOG_LEVEL": "info", "FEATURE_X": "on"}
	js, err := encodeConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO deployments (id, number, service, kind, config, image_digest,
		image_source, triggered_by, status, created_at, activated_at, ended_at) VALUES (?, ?, ?, 'deploy', ?, ?, 'registry', 'bench', 'INACTIVE', ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	defer stmt.Close()
	t0 := now().UnixNano()
	for i := 1; i <= n; i++ {
		at := t0 + int64(i)*1e9
		if _, err := stmt.ExecContext(ctx, fmt.Sprintf("%s-%d", service, i), i, service, js,
			fmt.Sprintf("sha256:%064x", i), at, at+1e8, at+2e9); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkKeepLog: keeping a removed container's log at the default bounds
// (a full 1000-line tail, about 90 KB with its times) for a deployment that
// already keeps one, so that the bound cuts the older one; against
// BenchmarkCreateDeployment's write in the same run.
func BenchmarkKeepLog(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	mustCreateService(b, s, "web")
	bulkDeployments(b, s, "web", 1_000)
	var text []byte
	for i := range 1000 {
		text = fmt.Appendf(text, "2026-11-29T21:00:%02d.123456789Z GET /items/%d 200 in %dms from 127.0.0.1\n", i%60, i, i%13)
	}
	i := 0
	for b.Loop() {
		i++
		dep := fmt.Sprint(1 + i%(KeepLogDeployments*2)) // more deployments than the service keeps logs of
		if err := s.KeepLog(ctx, KeptLog{DeploymentID: "web-" + dep, Service: "web", ContainerID: fmt.Sprint("c", i), Text: text}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeptLogIndex: what a list of deployments pays to say which kept a
// log (one query per service), with the service keeping the most it keeps.
func BenchmarkKeptLogIndex(b *testing.B) {
	ctx := context.Background()
	s, _ := openTest(b)
	mustCreateService(b, s, "web")
	bulkDeployments(b, s, "web", 1_000)
	for i := range KeepLogDeployments {
		if err := s.KeepLog(ctx, KeptLog{DeploymentID: fmt.Sprint("web-", i+1), Service: "web", ContainerID: fmt.Sprint("c", i), Text: []byte("x\n")}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		x, err := s.KeptLogIndex(ctx, "web")
		if err != nil || x.At(Deployment{ID: "web-1"}) == nil {
			b.Fatalf("index: %v", err)
		}
	}
}
