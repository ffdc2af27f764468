package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// A service's scale and a deployment's replicas: the count defaults to 1, a
// deployment records its own, each slot keeps its container, and Scale
// changes the service's count and the ACTIVE deployment's together, with an
// event.
func TestReplicas(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	svc := mustCreateService(t, s, "web")
	if svc.Replicas != 1 {
		t.Fatalf("a new service has %d replicas, want 1", svc.Replicas)
	}
	svc.Replicas = 3
	if err := s.UpdateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	svc.Replicas = 0 // 0 keeps the count
	if err := s.UpdateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetService(ctx, "web"); got.Replicas != 3 {
		t.Fatalf("service replicas = %d, want 3", got.Replicas)
	}

	d := Deployment{ID: "d1", Service: "web", Kind: KindDeploy, Config: testConfig("img:1"), Replicas: 3}
	if err := s.CreateDeployment(ctx, &d); err != nil {
		t.Fatal(err)
	}
	for slot, port := range []int{40002, 40000, 40001} {
		if err := s.SetReplica(ctx, "d1", Replica{Slot: []int{2, 0, 1}[slot], ContainerID: "c" + string(rune('a'+slot)), HostPort: port}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.GetDeployment(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Replicas != 3 || len(got.Containers) != 3 || got.Containers[0].Slot != 0 || got.Containers[2].Slot != 2 ||
		got.ContainerID != "cb" || got.HostPort != 40000 {
		t.Fatalf("deployment after three replicas: %+v", got)
	}
	// A slot's new container replaces the old one.
	if err := s.SetReplica(ctx, "d1", Replica{Slot: 1, ContainerID: "cz", HostPort: 40009, Label: "d0"}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetDeployment(ctx, "d1")
	if r, ok := got.Replica(1); !ok || r.ContainerID != "cz" || r.HostPort != 40009 || got.ContainerDeployment(r) != "d0" {
		t.Fatalf("slot 1 after a restart: %+v", got.Containers)
	}
	if _, _, err := s.Activate(ctx, "d1"); err != nil {
		t.Fatal(err)
	}

	scaled, err := s.Scale(ctx, "web", "d1", 2, "scaled from 3 to 2 replicas")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveReplica(ctx, "d1", 2); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetDeployment(ctx, "d1")
	if scaled.Replicas != 2 || got.Replicas != 2 || len(got.Containers) != 2 {
		t.Fatalf("after scale to 2: returned %+v, stored %+v", scaled, got)
	}
	if svc, _ := s.GetService(ctx, "web"); svc.Replicas != 2 {
		t.Fatalf("service replicas after scale = %d, want 2", svc.Replicas)
	}
	evs, _ := s.Events(ctx, "d1")
	if last := evs[len(evs)-1]; last.Message != "scaled from 3 to 2 replicas" || last.Status != StatusActive {
		t.Fatalf("last event %+v", last)
	}
	if _, err := s.Scale(ctx, "web", "d1", 0, "x"); err == nil {
		t.Fatal("scale to 0 was accepted")
	}
	if _, err := s.Scale(ctx, "nope", "", 2, "x"); err == nil {
		t.Fatal("scale of an unknown service was accepted")
	}

	// A purge takes the replicas with the deployments.
	if err := s.DeleteService(ctx, "web", true); err != nil {
		t.Fatal(err)
	}
	var n int
	s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM replicas`).Scan(&n)
	if n != 0 {
		t.Fatalf("%d replica rows left after a purge", n)
	}
}

// Migration 0007 makes the one container each deployment had its slot 0,
// label included, and gives every service and deployment a count of 1.
func TestMigrationKeepsTheContainer(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clank.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.version < 7 {
			if err := apply(ctx, db, m); err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
		}
	}
	for _, q := range []string{
		`INSERT INTO services (name, config, created_at, updated_at) VALUES ('web', '{}', 1, 1)`,
		`INSERT INTO deployments (id, service, number, kind, config, status, container_id, host_port, container_label, created_at)
			VALUES ('d1', 'web', 1, 'deploy', '{}', 'ACTIVE', 'c0ffee', 32768, 'd0', 1),
			       ('d2', 'web', 2, 'deploy', '{}', 'FAILED', '', 0, '', 2)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d1, err := s.GetDeployment(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if d1.Replicas != 1 || len(d1.Containers) != 1 || d1.Containers[0] != (Replica{Slot: 0, ContainerID: "c0ffee", HostPort: 32768, Label: "d0"}) ||
		d1.ContainerID != "c0ffee" || d1.HostPort != 32768 {
		t.Fatalf("d1 after the migration: %+v", d1)
	}
	if d2, _ := s.GetDeployment(ctx, "d2"); len(d2.Containers) != 0 || d2.ContainerID != "" {
		t.Fatalf("d2 had no container and has %+v", d2.Containers)
	}
	if svc, _ := s.GetService(ctx, "web"); svc.Replicas != 1 {
		t.Fatalf("service replicas after the migration = %d", svc.Replicas)
	}
}
