package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"
)

func TestCreateDeploymentNumbersPerService(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustCreateService(t, s, "web")
	mustCreateService(t, s, "api")

	for i, c := range []struct{ service, id string }{
		{"web", "w1"}, {"api", "a1"}, {"web", "w2"}, {"web", "w3"}, {"api", "a2"},
	} {
		d := mustDeploy(t, s, c.service, c.id)
		want := map[string]int{"w1": 1, "a1": 1, "w2": 2, "w3": 3, "a2": 2}[c.id]
		if d.Number != want {
			t.Errorf("step %d: %s got number %d, want %d", i, c.id, d.Number, want)
		}
	}

	d, err := s.GetDeploymentByNumber(ctx, "web", 2)
	if err != nil || d.ID != "w2" {
		t.Errorf("GetDeploymentByNumber(web, 2) = %s, %v", d.ID, err)
	}
	if n, _ := s.CountDeployments(ctx, "web"); n != 3 {
		t.Errorf("CountDeployments(web) = %d", n)
	}

	// The stored deployment is what was given, plus number, status, time.
	in := Deployment{
		ID: "w4", Service: "web", Kind: KindRollback, SourceDeploymentID: "w1",
		Config: testConfig("ghcr.io/acme/web:1", "web.localhost"), ImageDigest: "sha256:abc",
		ImageSource: SourceRegistry, TriggeredBy: "bob (SHA256:xyz)",
		ContainerID: "ignored", HostPort: 99, FailureReason: "ignored",
	}
	if err := s.CreateDeployment(ctx, &in); err != nil {
		t.Fatal(err)
	}
	if in.Number != 4 || in.Status != StatusDeploying || in.CreatedAt.IsZero() || in.ContainerID != "" || in.HostPort != 0 {
		t.Errorf("CreateDeployment did not fill in *d: %+v", in)
	}
	got, err := s.GetDeployment(ctx, "w4")
	if err != nil || !reflect.DeepEqual(got, in) {
		t.Errorf("GetDeployment = %+v, %v\nwant %+v", got, err, in)
	}
	evs, _ := s.Events(ctx, "w4")
	if len(evs) != 1 || evs[0].Status != StatusDeploying || evs[0].Message != "created" ||
		evs[0].Service != "web" || !evs[0].At.Equal(in.CreatedAt) {
		t.Errorf("first event = %+v", evs)
	}

	for name, d := range map[string]Deployment{
		"duplicate id":           {ID: "w1", Service: "web", Kind: KindDeploy},
		"empty id":               {Service: "web", Kind: KindDeploy},
		"no kind":                {ID: "x1", Service: "web"},
		"bad source":             {ID: "x2", Service: "web", Kind: KindDeploy, ImageSource: "ftp"},
		"created ACTIVE":         {ID: "x3", Service: "web", Kind: KindDeploy, Status: StatusActive},
		"other service's source": {ID: "x4", Service: "web", Kind: KindRollback, SourceDeploymentID: "a1"},
	} {
		err := s.CreateDeployment(ctx, &d)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if name == "duplicate id" && !errors.Is(err, ErrExists) {
			t.Errorf("duplicate id: %v, want ErrExists", err)
		}
	}
	if n, _ := s.CountDeployments(ctx, "web"); n != 4 {
		t.Errorf("refused creations left rows: %d deployments", n)
	}
}

func TestCreateDeploymentConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustCreateService(t, s, "web")
	mustCreateService(t, s, "api")

	const goroutines, each = 16, 10
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	numbers := make(chan int, goroutines*each)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				d := Deployment{ID: fmt.Sprintf("g%d-%d", g, i), Service: "web", Kind: KindDeploy}
				if err := s.CreateDeployment(ctx, &d); err != nil {
					errs <- err
					continue
				}
				numbers <- d.Number
				// Interleave with other writers and readers.
				if _, err := s.SetStatus(ctx, d.ID, StatusHealthChecking, "probing"); err != nil {
					errs <- err
				}
				if _, err := s.ListDeployments(ctx, "web", 5, 0); err != nil {
					errs <- err
				}
				if g%4 == 0 {
					other := Deployment{ID: fmt.Sprintf("api-g%d-%d", g, i), Service: "api", Kind: KindDeploy}
					if err := s.CreateDeployment(ctx, &other); err != nil {
						errs <- err
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(numbers)
	for err := range errs {
		t.Errorf("concurrent: %v", err)
	}
	var got []int
	for n := range numbers {
		got = append(got, n)
	}
	sort.Ints(got)
	for i, n := range got {
		if n != i+1 {
			t.Fatalf("numbers returned: %v; want 1..%d each once", got, goroutines*each)
		}
	}
	checkContiguous(t, s, "web", goroutines*each)
	checkContiguous(t, s, "api", 4*each)
}

func TestActivate(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustCreateService(t, s, "web")
	mustCreateService(t, s, "api")
	mustDeploy(t, s, "web", "d1")
	mustDeploy(t, s, "web", "d2")
	mustDeploy(t, s, "api", "a1")

	a1, prev, err := s.Activate(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if a1.Status != StatusActive || a1.ActivatedAt == nil || prev.ID != "" {
		t.Fatalf("first activation: %+v, previous %+v", a1, prev)
	}
	if _, _, err := s.Activate(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	firstActivation := *a1.ActivatedAt

	a2, prev, err := s.Activate(ctx, "d2")
	if err != nil {
		t.Fatal(err)
	}
	if a2.Status != StatusActive || prev.ID != "d1" || prev.Status != StatusDraining {
		t.Fatalf("second activation: %+v, previous %+v", a2, prev)
	}
	if svc, _ := s.GetService(ctx, "web"); svc.ActiveDeploymentID != "d2" {
		t.Errorf("web active = %q, want d2", svc.ActiveDeploymentID)
	}
	if svc, _ := s.GetService(ctx, "api"); svc.ActiveDeploymentID != "a1" {
		t.Errorf("api active = %q, want a1 (untouched)", svc.ActiveDeploymentID)
	}
	if got, _ := s.GetDeployment(ctx, "a1"); got.Status != StatusActive {
		t.Errorf("another service's deployment changed: %s", got.Status)
	}
	if got, _ := s.GetDeployment(ctx, "d1"); !reflect.DeepEqual(got, prev) {
		t.Errorf("stored previous = %+v, returned %+v", got, prev)
	}
	evs, _ := s.Events(ctx, "d1")
	if want := []Status{StatusDeploying, StatusActive, StatusDraining}; !reflect.DeepEqual(eventStatuses(evs), want) {
		t.Errorf("d1 events = %v, want %v", eventStatuses(evs), want)
	}

	// d1 drains out, then is activated again: activated_at is the first one.
	if _, err := s.SetStatus(ctx, "d1", StatusInactive, "drained"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Millisecond)
	again, prev, err := s.Activate(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if !again.ActivatedAt.Equal(firstActivation) {
		t.Errorf("activated_at moved on re-activation: %v, first %v", again.ActivatedAt, firstActivation)
	}
	if again.EndedAt != nil || prev.ID != "d2" {
		t.Errorf("re-activation: ended_at %v, previous %q", again.EndedAt, prev.ID)
	}
	// Activating the ACTIVE deployment again changes nothing.
	same, prev, err := s.Activate(ctx, "d1")
	if err != nil || prev.ID != "" || !reflect.DeepEqual(same, again) {
		t.Errorf("idempotent activate: %+v, previous %q, %v", same, prev.ID, err)
	}

	// Exactly one ACTIVE per service, enforced by the schema too.
	active, _ := s.ListDeploymentsByStatus(ctx, StatusActive)
	if len(active) != 2 || active[0].ID != "a1" || active[1].ID != "d1" {
		t.Errorf("ACTIVE deployments = %+v", active)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE deployments SET status = 'ACTIVE' WHERE id = 'd2'`); err == nil {
		t.Error("schema allowed two ACTIVE deployments of one service")
	}

	mustDeploy(t, s, "web", "d3")
	if _, err := s.Fail(ctx, "d3", "boom"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Activate(ctx, "d3"); err == nil {
		t.Error("a FAILED deployment was activated")
	}
	if _, err := s.SetStatus(ctx, "d3", StatusActive, "sneaky"); err == nil {
		t.Error("SetStatus(ACTIVE) accepted")
	}
}

func TestSetStatusAndFail(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustCreateService(t, s, "web")
	mustDeploy(t, s, "web", "d1")
	mustDeploy(t, s, "web", "d2")
	mustDeploy(t, s, "web", "d3")

	hc, err := s.SetStatus(ctx, "d1", StatusHealthChecking, "probing /healthz")
	if err != nil {
		t.Fatal(err)
	}
	if hc.Status != StatusHealthChecking || hc.EndedAt != nil || hc.FailureReason != "" {
		t.Errorf("HEALTH_CHECKING: %+v", hc)
	}
	if err := s.SetReplica(ctx, "d1", Replica{ContainerID: "c0ffee", HostPort: 40001}); err != nil {
		t.Fatal(err)
	}
	f, err := s.Fail(ctx, "d1", "health check timed out after 60s")
	if err != nil {
		t.Fatal(err)
	}
	if f.Status != StatusFailed || f.FailureReason != "health check timed out after 60s" || f.EndedAt == nil ||
		f.ContainerID != "c0ffee" || f.HostPort != 40001 {
		t.Errorf("FAILED: %+v", f)
	}
	if got, _ := s.GetDeployment(ctx, "d1"); !reflect.DeepEqual(got, f) {
		t.Errorf("stored %+v, returned %+v", got, f)
	}
	evs, err := s.Events(ctx, "d1")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		st  Status
		msg string
	}{{StatusDeploying, "created"}, {StatusHealthChecking, "probing /healthz"}, {StatusFailed, "health check timed out after 60s"}}
	if len(evs) != len(want) {
		t.Fatalf("events = %+v", evs)
	}
	for i, w := range want {
		if evs[i].Status != w.st || evs[i].Message != w.msg || evs[i].DeploymentID != "d1" {
			t.Errorf("event %d = %+v, want %s %q", i, evs[i], w.st, w.msg)
		}
		if i > 0 && (evs[i].ID <= evs[i-1].ID || evs[i].At.Before(evs[i-1].At)) {
			t.Errorf("events out of order: %+v then %+v", evs[i-1], evs[i])
		}
	}
	if !evs[2].At.Equal(*f.EndedAt) {
		t.Errorf("FAILED event at %v, ended_at %v", evs[2].At, f.EndedAt)
	}

	c, err := s.SetStatus(ctx, "d2", StatusCancelled, "cancelled by alice")
	if err != nil || c.EndedAt == nil || c.FailureReason != "" {
		t.Errorf("CANCELLED: %+v, %v", c, err)
	}

	// INACTIVE sets ended_at once; a deployment leaving ACTIVE stops being
	// the service's active one.
	if _, _, err := s.Activate(ctx, "d3"); err != nil {
		t.Fatal(err)
	}
	in, err := s.SetStatus(ctx, "d3", StatusInactive, "stopped")
	if err != nil || in.EndedAt == nil {
		t.Fatalf("INACTIVE: %+v, %v", in, err)
	}
	if svc, _ := s.GetService(ctx, "web"); svc.ActiveDeploymentID != "" {
		t.Errorf("service still points at an INACTIVE deployment: %q", svc.ActiveDeploymentID)
	}
	in2, _ := s.SetStatus(ctx, "d3", StatusInactive, "again")
	if !in2.EndedAt.Equal(*in.EndedAt) {
		t.Errorf("ended_at moved: %v then %v", in.EndedAt, in2.EndedAt)
	}

	if _, err := s.SetStatus(ctx, "d3", Status("BOGUS"), "x"); err == nil {
		t.Error("unknown status accepted")
	}

	ev, err := s.AddEvent(ctx, Event{DeploymentID: "d3", Message: "container logs rotated"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.ID == 0 || ev.Service != "web" || ev.Status != StatusInactive || ev.At.IsZero() {
		t.Errorf("AddEvent = %+v", ev)
	}
	evs, _ = s.Events(ctx, "d3")
	if last := evs[len(evs)-1]; !reflect.DeepEqual(last, ev) {
		t.Errorf("last event = %+v, want %+v", last, ev)
	}
}

func TestSnapshotIsImmutable(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustCreateService(t, s, "web")
	d := mustDeploy(t, s, "web", "d1")
	for _, col := range []string{"config", "service", "number", "kind", "triggered_by", "created_at"} {
		if _, err := s.w.ExecContext(ctx, `UPDATE deployments SET `+col+` = `+col+` WHERE id = 'd1'`); err == nil {
			t.Errorf("UPDATE of %s accepted", col)
		}
	}
	// A recorded digest is pinned...
	for _, set := range []string{"image_digest = 'sha256:other'", "image_source = 'local'"} {
		if _, err := s.w.ExecContext(ctx, `UPDATE deployments SET `+set+` WHERE id = 'd1'`); err == nil {
			t.Errorf("UPDATE SET %s of a pinned digest accepted", set)
		}
	}
	// ...but a deployment created before its image was resolved may record
	// it, once.
	late := Deployment{ID: "late", Service: "web", Kind: KindDeploy, ImageSource: SourceRegistry}
	if err := s.CreateDeployment(ctx, &late); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE deployments SET image_digest = 'sha256:aa', image_source = 'external' WHERE id = 'late'`); err != nil {
		t.Errorf("first record of a digest refused: %v", err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE deployments SET image_digest = 'sha256:bb' WHERE id = 'late'`); err == nil {
		t.Error("second record of a digest accepted")
	}
	// Changing the service's config leaves the snapshot as it was.
	svc, _ := s.GetService(ctx, "web")
	svc.Config.Env = map[string]string{"CHANGED": "yes"}
	svc.Config.Image = "other:2"
	if err := s.UpdateService(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetDeployment(ctx, "d1"); !reflect.DeepEqual(got.Config, d.Config) || got.ImageDigest != d.ImageDigest {
		t.Errorf("snapshot changed: %+v", got.Config)
	}
}

func TestLastActivated(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustCreateService(t, s, "web")
	mustCreateService(t, s, "api")
	for _, id := range []string{"d1", "d2", "d3", "d4"} {
		mustDeploy(t, s, "web", id)
	}
	mustDeploy(t, s, "api", "a1")

	if _, err := s.LastActivated(ctx, "web", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("no activations: %v, want ErrNotFound", err)
	}
	// d2 then d1 are activated (a rollback-like order), d3 fails, d4 never runs.
	for _, id := range []string{"d2", "d1"} {
		if _, _, err := s.Activate(ctx, id); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	if _, _, err := s.Activate(ctx, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Fail(ctx, "d3", "boom"); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ exclude, want string }{
		{"", "d1"},   // most recent activation, not highest number
		{"d1", "d2"}, // excluding the current ACTIVE one: the rollback target
		{"d4", "d1"},
	} {
		got, err := s.LastActivated(ctx, "web", c.exclude)
		if err != nil || got.ID != c.want {
			t.Errorf("LastActivated(exclude %q) = %q, %v; want %s", c.exclude, got.ID, err, c.want)
		}
	}
	mustCreateService(t, s, "solo")
	mustDeploy(t, s, "solo", "s1")
	s.Activate(ctx, "s1")
	if _, err := s.LastActivated(ctx, "solo", "s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("only activation excluded: %v, want ErrNotFound", err)
	}
}

func TestListDeploymentsPaging(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t)
	mustCreateService(t, s, "web")
	mustCreateService(t, s, "api")
	const total = 23
	for i := 1; i <= total; i++ {
		mustDeploy(t, s, "web", fmt.Sprintf("w%02d", i))
		if i%5 == 0 {
			mustDeploy(t, s, "api", fmt.Sprintf("a%02d", i))
		}
	}

	var seen []int
	before := 0
	for page := 0; ; page++ {
		ds, err := s.ListDeployments(ctx, "web", 10, before)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 0 {
			break
		}
		if page > 3 {
			t.Fatal("paging does not end")
		}
		for _, d := range ds {
			if d.Service != "web" {
				t.Fatalf("page %d holds %s's deployment", page, d.Service)
			}
			seen = append(seen, d.Number)
		}
		before = ds[len(ds)-1].Number
	}
	if len(seen) != total {
		t.Fatalf("pages held %v", seen)
	}
	for i, n := range seen {
		if n != total-i {
			t.Fatalf("pages held %v, want %d..1", seen, total)
		}
	}

	ds, _ := s.ListDeployments(ctx, "web", 3, 0)
	if len(ds) != 3 || ds[0].Number != total || ds[0].ID != "w23" {
		t.Errorf("newest 3 = %+v", ds)
	}
	if ds, _ := s.ListDeployments(ctx, "nobody", 10, 0); ds == nil || len(ds) != 0 {
		t.Errorf("unknown service: %v, want an empty non-nil list", ds)
	}
	if ds, _ := s.ListDeploymentsByStatus(ctx); len(ds) != 0 {
		t.Errorf("no statuses: %d deployments", len(ds))
	}
	s.Fail(ctx, "w03", "x")
	s.SetStatus(ctx, "a05", StatusHealthChecking, "x")
	inflight, err := s.ListDeploymentsByStatus(ctx, StatusDeploying, StatusHealthChecking)
	if err != nil || len(inflight) != total-1+total/5 || inflight[0].Service != "api" || inflight[0].Status != StatusHealthChecking {
		t.Errorf("in-flight: %d, %v", len(inflight), err)
	}
}
