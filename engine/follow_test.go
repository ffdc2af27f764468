package engine_test

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// The Docker engine goes away (its event stream cut, every connection
// refused) and comes back: the engine says so as it happens, routes nothing
// it has not checked meanwhile, and reconciles live when Docker is back,
// without a restart. Behind Clank's back, one service's container was
// replaced by a stranger on the same host port that claims to be it: the
// router never sends it a request, and the deployment gets a container of
// its own again; the other service's container, still there, is checked and
// routed again.
func TestDockerGoesAwayAndComesBack(t *testing.T) {
	proxy := testdocker.NewDockerProxy(t)
	h := newHarness(t)
	viaProxy := proxy.Runtime(t)
	h.eng.Close()
	h.tweak = append(h.tweak, func(o *engine.Options) { o.Runtime = viaProxy })
	h.start()
	ctx := context.Background()
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	h.service("web", v1, nil)
	h.service("api", v1, map[string]string{"VERSION": "api"})
	web := h.act(deploy("web"))
	api := h.act(deploy("api"))
	events := h.eng.Subscribe(ctx)

	// Nobody ever reaches the stranger through the router. The clients give
	// up on a held request quickly and ask again, so that they keep asking
	// through the whole outage.
	load := h.timedLoadWith(&http.Client{Timeout: 250 * time.Millisecond}, "web", 2, func(code int, body string) bool {
		return !strings.Contains(body, "stranger")
	})
	defer load.stop()

	proxy.Cut()
	ev := waitEvent(t, events, 10*time.Second, func(ev engine.Event) bool { return ev.Type == engine.EventDocker })
	if ev.Status != engine.DockerDown || h.eng.Docker().Up {
		t.Fatalf("after the cut: %s %q, Docker() %+v", ev.Status, ev.Message, h.eng.Docker())
	}
	// Both containers still run (only Clank's connection to Docker went), yet
	// neither is routed: a request is held, then answered 503.
	quick := &http.Client{Timeout: 500 * time.Millisecond}
	for _, service := range []string{"web", "api"} {
		if code, body, err := h.getWith(quick, service, "/"); err == nil && code != http.StatusServiceUnavailable {
			t.Errorf("%s answers %d %q while Docker is away: nothing checks its container", service, code, body)
		}
	}

	// Behind Clank's back: web's container goes, a stranger takes its port
	// and its labels (but not this instance's owner label).
	if err := h.rt.Stop(ctx, web.ContainerID, 0); err != nil {
		t.Fatal(err)
	}
	stranger := startStranger(t, h, web)
	testdocker.WaitOK(t, "http://127.0.0.1:"+strconv.Itoa(web.HostPort)+"/healthz", 10*time.Second)

	proxy.Restore()
	ev = waitEvent(t, events, 10*time.Second, func(ev engine.Event) bool { return ev.Type == engine.EventDocker })
	if ev.Status != engine.DockerUp {
		t.Fatalf("after the restore: %s %q", ev.Status, ev.Message)
	}
	waitEvent(t, events, 20*time.Second, runtimeIs(web.ID, engine.RuntimeHealthy))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, body, _ := h.getWith(quick, "api", "/"); code == 200 && body == "hello from api" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("api, whose container stayed, is not routed again after the reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	load.stop()

	got, _ := h.store.GetDeployment(ctx, web.ID)
	if got.ContainerID == web.ContainerID || got.ContainerID == stranger || got.Restarts != 1 || got.Status != store.StatusActive {
		t.Fatalf("web after the reconnect: container %s (stranger %s), restarts %d, %s", got.ContainerID, stranger, got.Restarts, got.Status)
	}
	if body := h.mustGet("web", "/"); body != "hello from v1" {
		t.Fatalf("web answers %q", body)
	}
	if body := h.mustGet("api", "/"); body != "hello from api" {
		t.Fatalf("api answers %q", body)
	}
	if a, _ := h.store.GetDeployment(ctx, api.ID); a.ContainerID != api.ContainerID || a.Restarts != 0 {
		t.Errorf("api's container, still running, was replaced: %s restarts %d", a.ContainerID, a.Restarts)
	}
	for _, f := range load.failures {
		if strings.Contains(f.body, "stranger") {
			t.Fatalf("a request reached the stranger (%d requests in all): %+v", load.total, f)
		}
	}
	// The stranger is not this instance's: it is left alone.
	if c, err := h.rt.Inspect(ctx, stranger); err != nil || !c.Running {
		t.Errorf("the stranger was touched: %v %+v", err, c)
	}
	t.Logf("%d requests through the router during the outage and after, none to the stranger", load.total)
}

var loopbackAddr = netip.MustParseAddr("127.0.0.1")

// startStranger runs the sample app on d's old host port with d's service and
// deployment labels but another owner's, and removes it when the test ends.
func startStranger(t *testing.T, h *harness, d store.Deployment) string {
	t.Helper()
	ctx := context.Background()
	port, _ := network.PortFrom(testdocker.SampleAppPort, network.TCP)
	img := testdocker.SampleImage(t, h.rt, "stranger")
	created, err := h.rt.Client().ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: "clank-test-stranger-" + testdocker.RandomSuffix(),
		Config: &container.Config{
			Image: img,
			Labels: map[string]string{testdocker.TestLabel: "1", engine.LabelManaged: "true", engine.LabelOwner: "someone-else",
				engine.LabelService: d.Service, engine.LabelDeployment: d.ID},
			ExposedPorts: network.PortSet{port: {}},
		},
		HostConfig: &container.HostConfig{PortBindings: network.PortMap{port: {{HostIP: loopbackAddr, HostPort: strconv.Itoa(d.HostPort)}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.rt.Stop(context.Background(), created.ID, 0) })
	if _, err := h.rt.Client().ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("start the stranger on port %d: %v", d.HostPort, err)
	}
	return created.ID
}
