package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].version != 1 {
		t.Fatalf("migrations = %+v, want 0001 first", ms)
	}
	s.Close()

	for i := 0; i < 3; i++ {
		s, err := Open(path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		var n, newest int
		if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &newest); err != nil {
			t.Fatal(err)
		}
		if n != len(ms) || newest != ms[len(ms)-1].version {
			t.Fatalf("reopen %d: schema_migrations has %d rows up to %d, want %d up to %d",
				i, n, newest, len(ms), ms[len(ms)-1].version)
		}
		s.Close()
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s2, err := Open(path); err == nil {
		s2.Close()
		t.Fatal("Open of a database from a newer binary succeeded")
	}
}

func TestOpenSettings(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("database file mode = %o, want 600 (it holds env values)", mode)
	}

	// Every pooled connection carries the pragmas: hold several read
	// connections at once so the pool must open more than one.
	var conns []interface{ Close() error }
	for i := 0; i < readConns; i++ {
		c, err := s.r.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var mode string
		var fk, busy, queryOnly int
		if err := c.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		c.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk)
		c.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy)
		c.QueryRowContext(ctx, `PRAGMA query_only`).Scan(&queryOnly)
		if mode != "wal" || fk != 1 || busy != int(BusyTimeout.Milliseconds()) || queryOnly != 1 {
			t.Errorf("read conn %d: journal_mode=%s foreign_keys=%d busy_timeout=%d query_only=%d", i, mode, fk, busy, queryOnly)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	var fk, sync int
	s.w.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk)
	s.w.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync)
	if fk != 1 || sync != 1 {
		t.Errorf("write conn: foreign_keys=%d synchronous=%d, want 1 and 1 (NORMAL)", fk, sync)
	}
	if _, err := s.r.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES ('x', 'y')`); err == nil {
		t.Error("the read pool accepted a write")
	}
}

func TestOpenPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "we?ird#dir 100%", "clank.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.SetMeta(context.Background(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path asked for: %v", err)
	}
}

// TestReopenKeepsEverything: what was written before Close is all there
// after Open, exactly.
func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t)
	svc := mustCreateService(t, s, "web", "web.localhost")
	d1 := mustDeploy(t, s, "web", "d1")
	if err := s.SetReplica(ctx, "d1", Replica{ContainerID: "c0ffee", HostPort: 32768}); err != nil {
		t.Fatal(err)
	}
	a1, _, err := s.Activate(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	mustDeploy(t, s, "web", "d2")
	f2, err := s.Fail(ctx, "d2", "health check timed out")
	if err != nil {
		t.Fatal(err)
	}
	ev1, _ := s.Events(ctx, "d1")
	if err := s.SetMeta(ctx, "instance", "abc"); err != nil {
		t.Fatal(err)
	}
	avail := Availability{Key: "sha256:aa", State: AvailabilityMissing, Reason: "404", CheckedAt: d1.CreatedAt}
	if err := s.PutAvailability(ctx, avail); err != nil {
		t.Fatal(err)
	}
	svc, _ = s.GetService(ctx, "web")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	gotSvc, err := s2.GetService(ctx, "web")
	if err != nil || !reflect.DeepEqual(gotSvc, svc) {
		t.Errorf("service after reopen = %+v, %v; want %+v", gotSvc, err, svc)
	}
	if gotSvc.ActiveDeploymentID != "d1" {
		t.Errorf("active deployment after reopen = %q, want d1", gotSvc.ActiveDeploymentID)
	}
	if got, err := s2.GetDeployment(ctx, "d1"); err != nil || !reflect.DeepEqual(got, a1) {
		t.Errorf("d1 after reopen = %+v, %v; want %+v", got, err, a1)
	}
	if got, err := s2.GetDeployment(ctx, "d2"); err != nil || !reflect.DeepEqual(got, f2) {
		t.Errorf("d2 after reopen = %+v, %v; want %+v", got, err, f2)
	}
	if got, err := s2.Events(ctx, "d1"); err != nil || !reflect.DeepEqual(got, ev1) {
		t.Errorf("events after reopen = %+v, %v; want %+v", got, err, ev1)
	}
	if owner, err := s2.domainOwner(ctx, "web.localhost"); err != nil || owner != "web" {
		t.Errorf("domain owner after reopen = %q, %v", owner, err)
	}
	if v, err := s2.GetMeta(ctx, "instance"); err != nil || v != "abc" {
		t.Errorf("meta after reopen = %q, %v", v, err)
	}
	if got, err := s2.GetAvailability(ctx, "sha256:aa"); err != nil || !reflect.DeepEqual(got, avail) {
		t.Errorf("availability after reopen = %+v, %v; want %+v", got, err, avail)
	}
}

// TestTwoStoresOneFile: two Stores (as two processes would) write to the same
// file at once; BEGIN IMMEDIATE and the busy timeout make them queue, not
// fail with SQLITE_BUSY, and numbering stays contiguous.
func TestTwoStoresOneFile(t *testing.T) {
	ctx := context.Background()
	a, path := openTest(t)
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mustCreateService(t, a, "web")

	const perStore, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*perStore*each)
	for si, s := range []*Store{a, b} {
		for g := 0; g < perStore; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < each; i++ {
					d := Deployment{ID: fmt.Sprintf("s%d-g%d-%d", si, g, i), Service: "web", Kind: KindDeploy}
					if err := s.CreateDeployment(ctx, &d); err != nil {
						errs <- err
					}
					if err := s.SetMeta(ctx, "last", d.ID); err != nil {
						errs <- err
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
	checkContiguous(t, a, "web", 2*perStore*each)
}

func checkContiguous(t *testing.T, s *Store, service string, want int) {
	t.Helper()
	ds, err := s.ListDeployments(context.Background(), service, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != want {
		t.Fatalf("%d deployments, want %d", len(ds), want)
	}
	for i, d := range ds {
		if d.Number != want-i {
			t.Fatalf("deployment %d (newest first) has number %d, want %d", i, d.Number, want-i)
		}
	}
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustCreateService(t, s, "web")
	checks := map[string]error{}
	_, checks["GetService"] = s.GetService(ctx, "nope")
	checks["UpdateService"] = s.UpdateService(ctx, Service{Name: "nope"})
	checks["DeleteService"] = s.DeleteService(ctx, "nope", false)
	_, checks["domainOwner"] = s.domainOwner(ctx, "nope.localhost")
	checks["CreateDeployment(no service)"] = s.CreateDeployment(ctx, &Deployment{ID: "x", Service: "nope", Kind: KindDeploy})
	checks["CreateDeployment(no source)"] = s.CreateDeployment(ctx, &Deployment{ID: "x", Service: "web", Kind: KindRollback, SourceDeploymentID: "gone"})
	_, checks["GetDeployment"] = s.GetDeployment(ctx, "nope")
	_, checks["GetDeploymentByNumber"] = s.GetDeploymentByNumber(ctx, "web", 1)
	_, checks["LastActivated"] = s.LastActivated(ctx, "web", "")
	_, checks["SetStatus"] = s.SetStatus(ctx, "nope", StatusCancelled, "x")
	_, checks["Fail"] = s.Fail(ctx, "nope", "x")
	checks["SetReplica"] = s.SetReplica(ctx, "nope", Replica{ContainerID: "c", HostPort: 1})
	_, _, checks["Activate"] = s.Activate(ctx, "nope")
	_, checks["Events"] = s.Events(ctx, "nope")
	_, checks["AddEvent"] = s.AddEvent(ctx, Event{DeploymentID: "nope", Message: "x"})
	_, checks["GetMeta"] = s.GetMeta(ctx, "nope")
	_, checks["GetAvailability"] = s.GetAvailability(ctx, "nope")
	for name, err := range checks {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", name, err)
		}
	}
	if n, err := s.CountDeployments(ctx, "web"); err != nil || n != 0 {
		t.Errorf("CountDeployments = %d, %v", n, err)
	}
}
