package engine_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

func deploy(svc string) engine.Request { return engine.Request{Kind: store.KindDeploy, Service: svc} }

func TestRollbackRestoresTheWholeSnapshot(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")

	h.service("web", v1, map[string]string{"DB": "one", "ONLY1": "x"})
	cpus, mem := 0.5, int64(64<<20)
	if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{CPUs: &cpus, MemoryBytes: &mem}); err != nil {
		t.Fatal(err)
	}
	d1 := h.act(deploy("web"))
	if d1.Status != store.StatusActive {
		t.Fatalf("#1 %s: %s", d1.Status, d1.FailureReason)
	}
	if got := h.mustGet("web", "/"); got != "hello from v1" {
		t.Fatalf("#1 answers %q", got)
	}

	// Change everything a snapshot holds, then deploy #2.
	port, cpus2, mem2 := 9090, 1.0, int64(128<<20)
	img2 := v2
	updated, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{
		Image: &img2, Port: &port, CPUs: &cpus2, MemoryBytes: &mem2,
		Domains:  []string{"web.localhost", "web2.localhost"},
		SetEnv:   map[string]string{"DB": "two", "NEW": "y", "PORT": "9090"},
		UnsetEnv: []string{"ONLY1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	d2 := h.act(deploy("web"))
	if d2.Status != store.StatusActive {
		t.Fatalf("#2 %s: %s", d2.Status, d2.FailureReason)
	}
	if got := h.mustGet("web", "/env/DB"); got != "two" {
		t.Fatalf("#2 DB=%q", got)
	}
	if got := h.mustGet("web2", "/"); got != "hello from v2" {
		t.Fatalf("#2 on web2.localhost answers %q", got)
	}

	// Rollback without --deployment: the one ACTIVE before the current.
	d3 := h.act(engine.Request{Kind: store.KindRollback, Service: "web"})
	if d3.Status != store.StatusActive {
		t.Fatalf("rollback %s: %s", d3.Status, d3.FailureReason)
	}
	if d3.Kind != store.KindRollback || d3.SourceDeploymentID != d1.ID || d3.Number != 3 {
		t.Fatalf("rollback record: kind %s source %s number %d", d3.Kind, d3.SourceDeploymentID, d3.Number)
	}
	if !reflect.DeepEqual(d3.Config, d1.Config) || d3.ImageDigest != d1.ImageDigest {
		t.Fatalf("rollback snapshot differs from #1:\n%+v\n%+v", d3.Config, d1.Config)
	}
	for path, want := range map[string]string{"/": "hello from v1", "/env/DB": "one", "/env/ONLY1": "x"} {
		if got := h.mustGet("web", path); got != want {
			t.Errorf("after rollback GET %s = %q, want %q", path, got, want)
		}
	}
	if code, _, _ := h.get("web", "/env/NEW"); code != http.StatusNotFound {
		t.Errorf("after rollback NEW is still set (HTTP %d)", code)
	}
	if code, _, _ := h.get("web2", "/"); code != http.StatusNotFound {
		t.Errorf("after rollback web2.localhost still routes (HTTP %d), want 404", code)
	}
	// Limits came back too.
	ins, err := h.rt.Client().ContainerInspect(ctx, d3.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if hc := ins.Container.HostConfig; hc.NanoCPUs != 500_000_000 || hc.Memory != 64<<20 {
		t.Errorf("rollback limits: NanoCPUs %d Memory %d", hc.NanoCPUs, hc.Memory)
	}
	// The service's own settings stay as they were.
	svc, _ := h.eng.Service(ctx, "web")
	if !reflect.DeepEqual(svc.Config, updated.Config) {
		t.Errorf("rollback changed the service's config:\n%+v\nwant\n%+v", svc.Config, updated.Config)
	}
	if svc.ActiveDeploymentID != d3.ID {
		t.Errorf("active = %s, want %s", svc.ActiveDeploymentID, d3.ID)
	}
	// The replaced deployment drains and its container goes.
	old := h.waitStatus(d2.ID, store.StatusInactive, 15*time.Second)
	if old.EndedAt == nil {
		t.Error("INACTIVE deployment has no ended_at")
	}
	if cs := h.containers(); len(cs) != 1 || cs[0].Labels[engine.LabelDeployment] != d3.ID {
		t.Errorf("containers after rollback: %+v", cs)
	}
}

func TestRedeployUsesOldImageWithCurrentConfig(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")
	h.service("api", v1, map[string]string{"A": "1"})
	d1 := h.act(deploy("api"))
	h.act(engine.Request{Kind: store.KindDeploy, Service: "api", Image: v2})
	if _, err := h.eng.UpdateService(ctx, "api", engine.ServicePatch{SetEnv: map[string]string{"A": "2"}}); err != nil {
		t.Fatal(err)
	}
	d3 := h.act(engine.Request{Kind: store.KindRedeploy, Service: "api", Deployment: "1"})
	if d3.Status != store.StatusActive || d3.Kind != store.KindRedeploy || d3.SourceDeploymentID != d1.ID {
		t.Fatalf("redeploy: %+v", d3)
	}
	if d3.ImageDigest != d1.ImageDigest {
		t.Errorf("redeploy digest %s, want #1's %s", d3.ImageDigest, d1.ImageDigest)
	}
	if got := h.mustGet("api", "/"); got != "hello from v1" {
		t.Errorf("redeploy serves %q, want v1", got)
	}
	if got := h.mustGet("api", "/env/A"); got != "2" {
		t.Errorf("redeploy env A=%q, want the current 2", got)
	}
	svc, _ := h.eng.Service(ctx, "api")
	if svc.Config.Image != v2 {
		t.Errorf("redeploy changed the service's image to %s", svc.Config.Image)
	}
}

func TestRefusalsCreateNothing(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")
	h.service("web", v1, nil)
	h.service("other", v1, nil)
	if _, err := h.eng.UpdateService(ctx, "other", engine.ServicePatch{Domains: []string{"other.localhost", "shop.example.com"}}); err != nil {
		t.Fatal(err)
	}

	// Only one deployment: nothing to roll back to.
	d1 := h.act(deploy("web"))
	// A FAILED deployment (#2), then a good one (#3).
	fail := "fail"
	short := 2 * time.Second
	if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{SetEnv: map[string]string{"HEALTH": fail}, DeployTimeout: &short}); err != nil {
		t.Fatal(err)
	}
	d2 := h.act(deploy("web"))
	if d2.Status != store.StatusFailed {
		t.Fatalf("#2 should fail its health check, got %s", d2.Status)
	}
	if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{UnsetEnv: []string{"HEALTH"}}); err != nil {
		t.Fatal(err)
	}
	d3 := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2})
	if d3.Status != store.StatusActive {
		t.Fatalf("#3: %s %s", d3.Status, d3.FailureReason)
	}

	count := func() (int, int) {
		n, err := h.store.CountDeployments(ctx, "web")
		if err != nil {
			t.Fatal(err)
		}
		return n, len(h.containers())
	}
	h.waitStatus(d1.ID, store.StatusInactive, 15*time.Second)
	wantN, wantC := count()
	cases := []struct {
		name string
		req  engine.Request
		is   error
		msg  string
	}{
		{"unknown service", engine.Request{Kind: store.KindRollback, Service: "nope"}, engine.ErrNotFound, `unknown service "nope"`},
		{"unknown deployment", engine.Request{Kind: store.KindRollback, Service: "web", Deployment: "99"}, engine.ErrNotFound, "no deployment #99"},
		{"never active", engine.Request{Kind: store.KindRollback, Service: "web", Deployment: "2"}, engine.ErrRefused, "was never ACTIVE"},
		{"current", engine.Request{Kind: store.KindRollback, Service: "web", Deployment: d3.ID}, engine.ErrRefused, "is the current ACTIVE deployment"},
		{"bad kind", engine.Request{Kind: "revert", Service: "web"}, engine.ErrInvalid, "unknown action"},
		{"bad image", engine.Request{Kind: store.KindDeploy, Service: "web", Image: "Not A Ref"}, engine.ErrInvalid, "invalid image reference"},
		{"redeploy without target", engine.Request{Kind: store.KindRedeploy, Service: "web"}, engine.ErrInvalid, "--deployment"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.eng.Act(ctx, tc.req)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %v containing %q", err, tc.is, tc.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if n, c := count(); n != wantN || c != wantC {
				t.Fatalf("a refusal created something: %d deployments (want %d), %d containers (want %d)", n, wantN, c, wantC)
			}
		})
	}

	t.Run("domain taken", func(t *testing.T) {
		_, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{Domains: []string{"shop.example.com"}})
		if !errors.Is(err, engine.ErrRefused) || !strings.Contains(err.Error(), "taken by service other") {
			t.Fatalf("got %v", err)
		}
		svc, _ := h.eng.Service(ctx, "web")
		if !reflect.DeepEqual(svc.Config.Domains, []string{"web.localhost"}) {
			t.Fatalf("refused update changed domains: %v", svc.Config.Domains)
		}
	})
	t.Run("invalid service", func(t *testing.T) {
		for _, name := range []string{"Bad_Name", ""} {
			if _, err := h.eng.CreateService(ctx, name, store.Config{Image: v1, Port: 80}); !errors.Is(err, engine.ErrInvalid) {
				t.Errorf("create %q: %v", name, err)
			}
		}
		if _, err := h.eng.CreateService(ctx, "web", store.Config{Image: v1, Port: 80}); !errors.Is(err, engine.ErrRefused) {
			t.Errorf("create duplicate: %v", err)
		}
	})
	t.Run("image gone", func(t *testing.T) {
		// #1 ran v1; remove v1 from the local engine: it can no longer be rolled back to.
		testdocker.RemoveImage(t, h.rt, v1)
		_, err := h.eng.Act(ctx, engine.Request{Kind: store.KindRollback, Service: "web", Deployment: "1"})
		if !errors.Is(err, engine.ErrRefused) || !strings.Contains(err.Error(), "is gone") || !strings.Contains(err.Error(), v1) {
			t.Fatalf("got %v", err)
		}
		if n, c := count(); n != wantN || c != wantC {
			t.Fatalf("a refusal created something: %d deployments, %d containers", n, c)
		}
		if h.eng.RollbackCapable(d1, d3.ID) {
			t.Error("#1 is still rollback capable with its image gone")
		}
	})
}

func TestOneDeploymentInProgressPerService(t *testing.T) {
	h := newHarness(t)
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	// Ready after 5 s: the rollback below must find #1 still in progress, even
	// on a loaded machine.
	h.service("web", v1, map[string]string{"READY_AFTER": "5s"})
	var wg sync.WaitGroup
	errs := make([]error, 2)
	ids := make([]string, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := h.eng.Act(context.Background(), deploy("web"))
			errs[i], ids[i] = err, d.ID
		}()
	}
	wg.Wait()
	ok, refused := 0, 0
	var id string
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
			id = ids[i]
		case errors.Is(err, engine.ErrInProgress) && strings.Contains(err.Error(), "in progress"):
			refused++
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("%d started, %d refused; want 1 and 1", ok, refused)
	}
	// While #1 is still health checking, a rollback is refused too.
	if _, err := h.eng.Act(context.Background(), engine.Request{Kind: store.KindRollback, Service: "web"}); !errors.Is(err, engine.ErrInProgress) {
		t.Fatalf("rollback during a deployment: %v", err)
	}
	h.waitStatus(id, store.StatusActive, 30*time.Second)
	if n, _ := h.store.CountDeployments(context.Background(), "web"); n != 1 {
		t.Fatalf("%d deployments, want 1", n)
	}
}

func TestFailingHealthCheckKeepsTheOldDeploymentServing(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")
	h.service("web", v1, nil)
	d1 := h.act(deploy("web"))

	var bad atomic.Int64
	stop := h.load("web", 4, func(code int, body string, err error) {
		if err != nil || code != 200 || body != "hello from v1" {
			bad.Add(1)
		}
	})
	short := 5 * time.Second // room for a slow start under load: the app must answer its 500
	if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{SetEnv: map[string]string{"HEALTH": "fail"}, DeployTimeout: &short}); err != nil {
		t.Fatal(err)
	}
	d2 := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2})
	total := stop()
	if d2.Status != store.StatusFailed || !strings.Contains(d2.FailureReason, "HTTP 500") {
		t.Fatalf("#2: %s %q", d2.Status, d2.FailureReason)
	}
	if bad.Load() != 0 || total == 0 {
		t.Fatalf("%d of %d requests failed or missed v1 during the failed deployment", bad.Load(), total)
	}
	svc, _ := h.eng.Service(ctx, "web")
	if svc.ActiveDeploymentID != d1.ID {
		t.Fatalf("active is %s, want #1", svc.ActiveDeploymentID)
	}
	for _, c := range h.containers() {
		if c.Labels[engine.LabelDeployment] == d2.ID {
			t.Fatalf("the failed deployment's container %s is still there", c.Name)
		}
	}
	evs, _ := h.eng.Events(ctx, d2.ID)
	var steps []string
	for _, ev := range evs {
		steps = append(steps, string(ev.Status))
	}
	if got := strings.Join(steps, ","); got != "DEPLOYING,HEALTH_CHECKING,FAILED" {
		t.Errorf("lifecycle events: %s", got)
	}
}

func TestRestartReconciles(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	h.service("web", v1, nil)
	d1 := h.act(deploy("web"))

	// A deployment caught mid-flight: its record says HEALTH_CHECKING and its
	// container runs, but nobody drives it any more. Plus an orphan container.
	h.eng.Close()
	stuck := store.Deployment{ID: "dstuck000001", Service: "web", Kind: store.KindDeploy, Config: d1.Config,
		ImageDigest: d1.ImageDigest, ImageSource: d1.ImageSource, TriggeredBy: "test", Status: store.StatusDeploying}
	if err := h.store.CreateDeployment(ctx, &stuck); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{engine.LabelManaged: "true", engine.LabelOwner: h.eng.Owner(), engine.LabelService: "web", testdocker.TestLabel: "1"}
	for _, id := range []string{stuck.ID, "dorphan00001"} {
		l := map[string]string{engine.LabelDeployment: id}
		for k, v := range labels {
			l[k] = v
		}
		c, err := h.rt.Start(ctx, engine.ContainerSpec{Name: "clank-test-" + id + "-" + testdocker.RandomSuffix(), Image: v1, Port: 8080, Labels: l})
		if err != nil {
			t.Fatal(err)
		}
		if id == stuck.ID {
			if err := h.store.SetReplica(ctx, id, store.Replica{ContainerID: c.ID, HostPort: c.HostPort}); err != nil {
				t.Fatal(err)
			}
			if _, err := h.store.SetStatus(ctx, id, store.StatusHealthChecking, "probing"); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A fresh router, as after a crash: routes come back from the store.
	h.router.RemoveRoute("web")
	h.start()

	got, _ := h.store.GetDeployment(ctx, stuck.ID)
	if got.Status != store.StatusFailed || !strings.Contains(got.FailureReason, "interrupted") {
		t.Fatalf("stuck deployment: %s %q", got.Status, got.FailureReason)
	}
	cs := h.containers()
	if len(cs) != 1 || cs[0].Labels[engine.LabelDeployment] != d1.ID {
		t.Fatalf("after reconcile want only #1's container, got %+v", cs)
	}
	if body := h.mustGet("web", "/"); body != "hello from v1" {
		t.Fatalf("after reconcile web answers %q", body)
	}
}

// TestZeroFailedRequestsAcrossCutovers: 20 back-to-back cutovers under a
// closed-loop load of 32 concurrent clients through the edge router.
func TestZeroFailedRequestsAcrossCutovers(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	h := newHarness(t)
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")
	h.service("web", v1, nil)
	h.act(deploy("web"))

	var non2xx, transport atomic.Int64
	var seen sync.Map
	stop := h.load("web", 32, func(code int, body string, err error) {
		switch {
		case err != nil:
			transport.Add(1)
			t.Logf("transport error: %v", err)
		case code/100 != 2:
			non2xx.Add(1)
			t.Logf("HTTP %d: %s", code, body)
		default:
			seen.Store(body, true)
		}
	})
	images := []string{v2, v1}
	for i := range 20 {
		d := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: images[i%2]})
		if d.Status != store.StatusActive {
			t.Fatalf("cutover %d: %s %s", i, d.Status, d.FailureReason)
		}
	}
	time.Sleep(200 * time.Millisecond)
	total := stop()
	t.Logf("%d requests, %d non-2xx, %d transport errors", total, non2xx.Load(), transport.Load())
	if non2xx.Load() != 0 || transport.Load() != 0 {
		t.Fatalf("%d non-2xx and %d transport errors in %d requests", non2xx.Load(), transport.Load(), total)
	}
	for _, v := range []string{"hello from v1", "hello from v2"} {
		if _, ok := seen.Load(v); !ok {
			t.Errorf("never saw %q", v)
		}
	}
	if total < 1000 {
		t.Errorf("only %d requests: the load was not sustained", total)
	}
}

// Changing a service's settings while its first deployment cuts over must not
// take the new route away.
func TestConfigChangeDuringFirstCutoverKeepsTheRoute(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.service("web", testdocker.SampleImage(t, h.rt, "v1"), map[string]string{"READY_AFTER": "1s"})
	events := h.eng.Subscribe(ctx)
	d, err := h.eng.Act(ctx, deploy("web"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-events:
			default:
			}
			cur, _ := h.store.GetDeployment(ctx, d.ID)
			if cur.Status == store.StatusActive || cur.Status == store.StatusFailed {
				return
			}
			if _, err := h.eng.UpdateService(ctx, "web", engine.ServicePatch{SetEnv: map[string]string{"N": fmt.Sprint(i)}}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	<-done
	h.waitStatus(d.ID, store.StatusActive, 30*time.Second)
	if body := h.mustGet("web", "/"); body != "hello from v1" {
		t.Fatalf("web answers %q", body)
	}
}
