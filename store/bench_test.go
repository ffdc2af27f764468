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
