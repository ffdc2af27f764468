package swarm_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

func deploy(svc string) engine.Request { return engine.Request{Kind: store.KindDeploy, Service: svc} }

// tasks is the running tasks of d's Swarm service.
func (h *harness) tasks(d store.Deployment) []engine.Task {
	h.t.Helper()
	s, err := h.rt.Service(context.Background(), engine.SwarmServiceName(d))
	if err != nil {
		h.t.Fatal(err)
	}
	var out []engine.Task
	for _, t := range s.Tasks {
		if t.DesiredState == engine.TaskRunning && t.State == engine.TaskRunning {
			out = append(out, t)
		}
	}
	return out
}

func TestSwarmDeploymentIsOneSwarmServiceServedThroughTheRouter(t *testing.T) {
	h := newHarness(t)
	img := h.image("web", "v1")
	h.service("web", img)
	d := h.act(deploy("web"))
	if d.Status != store.StatusActive {
		t.Fatalf("#%d: %s (%s)", d.Number, d.Status, d.FailureReason)
	}
	s, err := h.rt.Service(context.Background(), "clank-web-1")
	if err != nil {
		t.Fatal(err)
	}
	if s.Labels[engine.LabelDeployment] != d.ID || s.Labels[engine.LabelOwner] != h.eng.Owner() || s.Labels[engine.LabelService] != "web" {
		t.Fatalf("Swarm service labels %v", s.Labels)
	}
	tasks := h.tasks(d)
	if len(tasks) != 1 || tasks[0].Addr != "127.0.0.1" || tasks[0].Port == 0 {
		t.Fatalf("tasks %+v: want one on 127.0.0.1 with a published port", tasks)
	}
	code, body, err := h.get("web", "/")
	if err != nil || code != http.StatusOK || body != "hello from v1" {
		t.Fatalf("through the router: %d %q %v", code, body, err)
	}
	rs := h.eng.Runtime(d.ID)
	if rs == nil || len(rs.Replicas) != 1 || rs.Replicas[0].Node == "" || rs.Replicas[0].ContainerID != tasks[0].ID {
		t.Fatalf("runtime %+v: want the task with its node", rs)
	}
	// Nothing of Clank's runs as a plain container on Swarm.
	if cs, err := h.docker.List(context.Background(), map[string]string{engine.LabelOwner: h.eng.Owner()}); err != nil || len(cs) != 0 {
		t.Fatalf("plain containers of this engine: %v %v", cs, err)
	}
	nodes, err := h.eng.Nodes(context.Background())
	if err != nil || len(nodes) != 1 || nodes[0].Tasks != 1 || nodes[0].State != "ready" || nodes[0].Role != "manager" {
		t.Fatalf("nodes %+v %v: want one ready manager running 1 task", nodes, err)
	}
}

func TestSwarmRefusesALocalOnlyImage(t *testing.T) {
	h := newHarness(t)
	img := testdocker.SampleImage(t, h.docker, "local")
	h.service("web", img)
	_, err := h.eng.Act(context.Background(), engine.Request{Kind: store.KindDeploy, Service: "web", TriggeredBy: "test"})
	if !errors.Is(err, engine.ErrRefused) || !strings.Contains(err.Error(), "local-only") || !strings.Contains(err.Error(), "registry every node can reach") {
		t.Fatalf("deploy of a local-only image on Swarm: %v", err)
	}
	if n, _ := h.store.CountDeployments(context.Background(), "web"); n != 0 {
		t.Fatalf("%d deployments recorded by a refusal", n)
	}
}

func TestSwarmKilledTaskIsReplacedAndTheRouterFollows(t *testing.T) {
	h := newHarness(t)
	h.service("web", h.image("web", "v1"))
	d := h.act(deploy("web"))
	if d.Status != store.StatusActive {
		t.Fatalf("#%d: %s (%s)", d.Number, d.Status, d.FailureReason)
	}
	before := h.tasks(d)
	if len(before) != 1 {
		t.Fatalf("tasks %+v", before)
	}
	killed := before[0]
	if _, err := h.docker.Client().ContainerKill(context.Background(), killed.ContainerID, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
		t.Fatal(err)
	}
	// The router follows Swarm: the new task serves, on its own port.
	var now []engine.Task
	h.eventually(60*time.Second, func() string { return fmt.Sprintf("tasks %+v, runtime %+v", now, h.eng.Runtime(d.ID)) }, func() bool {
		now = h.tasks(d)
		if len(now) != 1 || now[0].ID == killed.ID {
			return false
		}
		rs := h.eng.Runtime(d.ID)
		return rs != nil && rs.State == engine.RuntimeHealthy && len(rs.Replicas) == 1 && rs.Replicas[0].ContainerID == now[0].ID
	})
	code, body, err := h.get("web", "/")
	if err != nil || code != http.StatusOK || body != "hello from v1" {
		t.Fatalf("after the task was replaced: %d %q %v", code, body, err)
	}
	got, err := h.store.GetDeployment(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Restarts < 1 || !strings.Contains(got.LastExit, "failed") {
		t.Fatalf("deployment after its task was replaced: restarts %d, last exit %q", got.Restarts, got.LastExit)
	}
}

func TestSwarmCutoverUnderLoadFailsNothing(t *testing.T) {
	h := newHarness(t)
	v1, v2 := h.image("web", "v1"), h.image("web", "v2")
	h.service("web", v1)
	d1 := h.act(deploy("web"))
	if d1.Status != store.StatusActive {
		t.Fatalf("#1: %s (%s)", d1.Status, d1.FailureReason)
	}
	var mu sync.Mutex
	var failures []string
	bodies := map[string]int{}
	stop := h.load("web", 8, func(code int, body string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil || code != http.StatusOK {
			failures = append(failures, fmt.Sprintf("%d %q %v", code, body, err))
			return
		}
		bodies[body]++
	})
	d2 := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2})
	// The load goes on until blue has drained and its Swarm service is gone.
	h.eventually(30*time.Second, func() string { return "#1's Swarm service still there" }, func() bool {
		_, err := h.rt.Service(context.Background(), engine.SwarmServiceName(d1))
		return errors.Is(err, engine.ErrSwarmServiceNotFound)
	})
	total := stop()
	if d2.Status != store.StatusActive {
		t.Fatalf("#2: %s (%s)", d2.Status, d2.FailureReason)
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed across the cutover on Swarm, first: %s", len(failures), total, failures[0])
	}
	if bodies["hello from v1"] == 0 || bodies["hello from v2"] == 0 {
		t.Fatalf("answers %v: want both versions across the cutover", bodies)
	}
	if _, body, _ := h.get("web", "/"); body != "hello from v2" {
		t.Fatalf("after the cutover: %q", body)
	}
	// Blue's Swarm service goes before its record says INACTIVE: wait for the
	// record rather than read it at once.
	var old store.Deployment
	h.eventually(30*time.Second, func() string { return "#1 after the cutover: " + string(old.Status) }, func() bool {
		old, _ = h.store.GetDeployment(context.Background(), d1.ID)
		return old.Status == store.StatusInactive
	})
}

// TestSwarmInitAndLeaveSpareOtherTests: making the engine a Swarm and
// leaving it again, as these tests do, keeps the plain containers and local
// networks that other packages' tests run meanwhile.
func TestSwarmInitAndLeaveSpareOtherTests(t *testing.T) {
	rt := testdocker.Require(t)
	ctx := context.Background()
	cli := rt.Client()
	img := testdocker.SampleImage(t, rt, "bystander")
	label := map[string]string{testdocker.TestLabel: "1", "dev.clank.swarm-test": testdocker.RandomSuffix()}
	netName := "clank-test-bystander-" + testdocker.RandomSuffix()
	if _, err := cli.NetworkCreate(ctx, netName, client.NetworkCreateOptions{Labels: label}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.NetworkRemove(context.Background(), netName, client.NetworkRemoveOptions{}) })
	testdocker.Cleanup(t, rt, label)
	c, err := rt.Start(ctx, engine.ContainerSpec{Name: "clank-test-bystander-" + testdocker.RandomSuffix(), Image: img, Port: testdocker.SampleAppPort, Labels: label})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("swarm", func(t *testing.T) {
		h := newHarness(t)
		h.service("web", h.image("web", "v1"))
		if d := h.act(deploy("web")); d.Status != store.StatusActive {
			t.Fatalf("#1 on Swarm: %s (%s)", d.Status, d.FailureReason)
		}
	}) // the swarm is left here, unless another test of this process holds it
	got, err := rt.Inspect(ctx, c.ID)
	if err != nil || !got.Running {
		t.Fatalf("the bystander container after swarm init and leave: %+v %v", got, err)
	}
	testdocker.WaitOK(t, fmt.Sprintf("http://127.0.0.1:%d/", got.HostPort), 10*time.Second)
	if _, err := cli.NetworkInspect(ctx, netName, client.NetworkInspectOptions{}); err != nil {
		t.Fatalf("the bystander network after swarm init and leave: %v", err)
	}
}
