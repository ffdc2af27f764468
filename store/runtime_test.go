package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A service made before migration 0002 gets the default policy; one made
// after keeps the policy it was given, and a policy change never touches a
// deployment's snapshot.
func TestPolicyMigratesAndStaysOffTheSnapshot(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "clank.db")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	// A database of the first migration alone, with one service in it.
	db, err := sql.Open("sqlite", dsn(path, ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	if err := apply(ctx, db, ms[0]); err != nil {
		t.Fatal(err)
	}
	cfg, _ := encodeConfig(testConfig("ghcr.io/acme/old:1", "old.localhost"))
	if _, err := db.ExecContext(ctx, `INSERT INTO services (name, config, created_at, updated_at) VALUES ('old', ?, 1, 1)`, cfg); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old, err := s.GetService(ctx, "old")
	if err != nil {
		t.Fatal(err)
	}
	if old.Policy != DefaultPolicy() {
		t.Fatalf("migrated service's policy = %+v, want the default %+v", old.Policy, DefaultPolicy())
	}

	svc := mustCreateService(t, s, "web")
	if svc.Policy != (Policy{}) {
		t.Fatalf("a service created with no policy reads back %+v", svc.Policy)
	}
	d := mustDeploy(t, s, "web", "d1")
	svc.Policy = Policy{AutoRollback: true, WatchWindow: time.Minute, WatchFailures: 5, Watch5xx: 0.25, KeepWarm: false}
	if err := s.UpdateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetService(ctx, "web"); got.Policy != svc.Policy {
		t.Fatalf("policy = %+v, want %+v", got.Policy, svc.Policy)
	}
	if got, _ := s.GetDeployment(ctx, d.ID); !reflect.DeepEqual(got.Config, d.Config) || got.WatchPolicy != (Policy{}) {
		t.Fatalf("a policy change reached the deployment: %+v", got)
	}
}

func TestRunFieldsAfterTheCutover(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustCreateService(t, s, "web")
	d1 := mustDeploy(t, s, "web", "d1")
	if _, _, err := s.Activate(ctx, d1.ID); err != nil {
		t.Fatal(err)
	}

	// Exits and restarts.
	if _, err := s.RecordExit(ctx, d1.ID, "exit 137 (OOM killed)", "crashed: exit 137 (OOM killed)"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := s.RecordRestart(ctx, d1.ID, "started again"); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.GetDeployment(ctx, d1.ID)
	if got.Restarts != 2 || got.LastExit != "exit 137 (OOM killed)" || got.Status != StatusActive {
		t.Fatalf("after a crash and two restarts: %+v", got)
	}
	evs, _ := s.Events(ctx, d1.ID)
	if last := evs[len(evs)-1]; last.Status != StatusActive || last.Message != "started again" {
		t.Fatalf("last event %+v", last)
	}

	// The watch window.
	until := time.Now().Add(5 * time.Minute).UTC().Round(0)
	p := DefaultPolicy()
	p.AutoRollback = true
	if _, err := s.StartWatch(ctx, d1.ID, until, p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TripWatch(ctx, d1.ID, "crashed: exit 3"); err != nil {
		t.Fatal(err)
	}
	got, _ = s.GetDeployment(ctx, d1.ID)
	if got.WatchUntil == nil || !got.WatchUntil.Equal(until) || got.WatchPolicy != p || got.WatchTripped != "crashed: exit 3" {
		t.Fatalf("watch fields: %+v", got)
	}

	// A warm standby: INACTIVE with warm_until, until it ends once.
	d2 := mustDeploy(t, s, "web", "d2")
	if _, _, err := s.Activate(ctx, d2.ID); err != nil {
		t.Fatal(err)
	}
	warm, err := s.Standby(ctx, d1.ID, until, "drained; kept warm")
	if err != nil {
		t.Fatal(err)
	}
	if warm.Status != StatusInactive || warm.WarmUntil == nil || !warm.WarmUntil.Equal(until) || warm.EndedAt == nil {
		t.Fatalf("standby: %+v", warm)
	}
	if ws, _ := s.ListStandbys(ctx); len(ws) != 1 || ws[0].ID != d1.ID {
		t.Fatalf("standbys: %+v", ws)
	}
	// A rollback adopts it: the container carries d1's label.
	d3 := mustDeploy(t, s, "web", "d3")
	if err := s.SetReplica(ctx, d3.ID, Replica{ContainerID: "c1", HostPort: 1234, Label: d1.ID}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDeployment(ctx, d3.ID); got.ContainerDeployment(got.Containers[0]) != d1.ID || got.ContainerID != "c1" {
		t.Fatalf("adopted: %+v", got)
	}
	if got, _ := s.GetDeployment(ctx, d2.ID); got.ContainerDeployment(Replica{ContainerID: "c2"}) != d2.ID {
		t.Fatalf("own container label: %q", got.ContainerDeployment(Replica{ContainerID: "c2"}))
	}
	if _, ok, err := s.EndStandby(ctx, d1.ID, "adopted by #3"); err != nil || !ok {
		t.Fatalf("end standby: %v %v", ok, err)
	}
	if _, ok, err := s.EndStandby(ctx, d1.ID, "again"); err != nil || ok {
		t.Fatalf("a second end of the same standby: %v %v", ok, err)
	}
	if ws, _ := s.ListStandbys(ctx); len(ws) != 0 {
		t.Fatalf("standbys after the end: %+v", ws)
	}
	evs, _ = s.Events(ctx, d1.ID)
	if msg := evs[len(evs)-1].Message; msg != "adopted by #3" {
		t.Fatalf("last event of the standby: %q", msg)
	}

	if _, err := s.RecordRestart(ctx, "nope", "x"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown deployment: %v", err)
	}
}
