package docker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/docker"
	"github.com/clank-dev/clank/internal/testdocker"
)

// testLabels labels a test's containers so it can find and remove them, and
// only them.
func testLabels(t testing.TB) map[string]string {
	return map[string]string{
		testdocker.TestLabel: "1",
		"dev.clank.test.run": testdocker.RandomSuffix(),
	}
}

func TestContainerLifecycle(t *testing.T) {
	rt := testdocker.Require(t)
	image := testdocker.SampleImage(t, rt, "v1")
	labels := testLabels(t)
	testdocker.Cleanup(t, rt, labels)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	evctx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	events, eventErrs := rt.Events(evctx)

	name := "clank-test-lifecycle-" + labels["dev.clank.test.run"]
	c, err := rt.Start(ctx, engine.ContainerSpec{
		Name:        name,
		Image:       image,
		Env:         map[string]string{"GREETING": "hi there", "VERSION": "v1-env"},
		Port:        testdocker.SampleAppPort,
		CPUs:        0.5,
		MemoryBytes: 64 << 20,
		Labels:      labels,
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == "" || c.Name != name || !c.Running || c.HostPort == 0 || c.Labels["dev.clank.test.run"] != labels["dev.clank.test.run"] {
		t.Fatalf("Start returned %+v", c)
	}

	base := fmt.Sprintf("http://127.0.0.1:%d", c.HostPort)
	testdocker.WaitOK(t, base+"/healthz", 10*time.Second)
	if got := httpGet(t, base+"/env/GREETING"); got != "hi there" {
		t.Errorf("/env/GREETING = %q, want the env given to Start", got)
	}
	if got := httpGet(t, base+"/"); got != "hello from v1-env\n" {
		t.Errorf("/ = %q: Start's env should override the image's VERSION", got)
	}

	t.Run("limits applied", func(t *testing.T) {
		res, err := rt.Client().ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		hc := res.Container.HostConfig
		if hc.NanoCPUs != 500_000_000 || hc.Memory != 64<<20 {
			t.Errorf("NanoCPUs = %d, Memory = %d; want 5e8 and %d", hc.NanoCPUs, hc.Memory, 64<<20)
		}
		if hc.RestartPolicy.Name != "no" {
			t.Errorf("restart policy = %q, want no", hc.RestartPolicy.Name)
		}
	})

	t.Run("list by labels", func(t *testing.T) {
		got, err := rt.List(ctx, labels)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != c.ID || got[0].Name != name || got[0].HostPort != c.HostPort || !got[0].Running {
			t.Errorf("List(%v) = %+v, want just %+v", labels, got, c)
		}
		other, err := rt.List(ctx, map[string]string{"dev.clank.test.run": "no-such-run"})
		if err != nil || len(other) != 0 {
			t.Errorf("List(other labels) = %+v, %v; want none", other, err)
		}
	})

	t.Run("logs", func(t *testing.T) {
		// The app logs the request before it answers, but Docker may write
		// the line to its log a moment after the answer came back (a CI run
		// under load read the log without it): look again for a while.
		var buf bytes.Buffer
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			buf.Reset()
			if err := rt.Logs(ctx, c.ID, engine.LogOptions{}, &buf); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(buf.String(), "GET /env/GREETING") || time.Now().After(deadline) {
				break
			}
		}
		if !strings.Contains(buf.String(), "sampleapp v1-env listening on") || !strings.Contains(buf.String(), "GET /env/GREETING") {
			t.Errorf("logs = %q, want the startup line and the request log", buf.String())
		}
		if strings.ContainsRune(buf.String(), '\x01') {
			t.Errorf("logs still hold stream multiplexing headers: %q", buf.String())
		}
	})

	t.Run("follow logs until ctx ends", func(t *testing.T) {
		fctx, fcancel := context.WithCancel(ctx)
		w := &signalWriter{want: "GET /slow?ms=1", seen: make(chan struct{}), started: make(chan struct{})}
		done := make(chan error, 1)
		go func() { done <- rt.Logs(fctx, c.ID, engine.LogOptions{Follow: true, Tail: 1}, w) }()
		// The last line so far (tail 1) arrives first: the follow is on.
		select {
		case <-w.started:
		case <-time.After(10 * time.Second):
			t.Fatal("a following Logs did not deliver the tail")
		}
		httpGet(t, base+"/slow?ms=1")
		select {
		case <-w.seen:
		case <-time.After(10 * time.Second):
			t.Error("a following Logs did not deliver a new line")
		}
		fcancel()
		if err := <-done; err != nil {
			t.Errorf("Logs(follow) after ctx ended = %v, want nil", err)
		}
	})

	if err := rt.Stop(ctx, c.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, err := rt.List(ctx, labels); err != nil || len(got) != 0 {
		t.Errorf("after Stop, List = %+v, %v; want none", got, err)
	}
	if err := rt.Stop(ctx, c.ID, time.Second); err != nil {
		t.Errorf("Stop of a removed container = %v, want nil", err)
	}

	seen := map[string]bool{}
	timeout := time.After(10 * time.Second)
	for !seen["die"] || !seen["destroy"] {
		select {
		case ev := <-events:
			if ev.Type == "container" && ev.ID == c.ID {
				seen[ev.Action] = true
				if ev.Labels["dev.clank.test.run"] != labels["dev.clank.test.run"] {
					t.Errorf("%s event labels = %v, want the container's", ev.Action, ev.Labels)
				}
			}
		case err := <-eventErrs:
			t.Fatalf("events stream: %v", err)
		case <-timeout:
			t.Fatalf("events after Stop: saw %v, want die and destroy", seen)
		}
	}
}

func TestStartFailuresRemoveTheContainer(t *testing.T) {
	rt := testdocker.Require(t)
	labels := testLabels(t)
	testdocker.Cleanup(t, rt, labels)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// An image with nothing to run: create works, start fails.
	noEntrypoint := buildTiny(t, rt, "FROM scratch\nCOPY hello.txt /\nENTRYPOINT [\"/nope\"]\n")
	for _, tt := range []struct {
		name, image, want string
		imageMissing      bool
	}{
		{"start fails", noEntrypoint, "start container", false},
		{"missing image", "clank-test/no-such-image:" + testdocker.RandomSuffix(), "create container", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rt.Start(ctx, engine.ContainerSpec{
				Name:   "clank-test-fail-" + testdocker.RandomSuffix(),
				Image:  tt.image,
				Port:   80,
				Labels: labels,
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Start = %v; want an error saying %q", err, tt.want)
			}
			if errors.Is(err, engine.ErrImageNotFound) != tt.imageMissing {
				t.Errorf("Start = %v; errors.Is(ErrImageNotFound) should be %v", err, tt.imageMissing)
			}
			if got, err := rt.List(ctx, labels); err != nil || len(got) != 0 {
				t.Errorf("a failed Start left %+v (%v)", got, err)
			}
		})
	}
}

// buildTiny builds a FROM scratch image from dockerfile with a hello.txt
// beside it that holds its unique tag, so that the image is this test's
// alone, and removes it when the test ends.
func buildTiny(t *testing.T, rt *docker.Runtime, dockerfile string) string {
	t.Helper()
	// Two test runs side by side on one engine never build the same image
	// (one removing it under the other).
	tag := "clank-test/tiny:" + testdocker.RandomSuffix()
	tarball, err := docker.TarContext([]docker.TarFile{
		{Name: "Dockerfile", Body: []byte(dockerfile)},
		{Name: "hello.txt", Body: []byte("hello from " + tag + "\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.BuildImage(context.Background(), tarball, tag, map[string]string{testdocker.TestLabel: "1"}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testdocker.RemoveImage(t, rt, tag) })
	return tag
}

func TestImages(t *testing.T) {
	rt := testdocker.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("missing image", func(t *testing.T) {
		ref := "clank-test/missing:" + testdocker.RandomSuffix()
		if _, err := rt.InspectImage(ctx, ref); !errors.Is(err, engine.ErrImageNotFound) {
			t.Errorf("InspectImage(missing) = %v, want ErrImageNotFound", err)
		}
		if err := rt.RemoveImage(ctx, ref); !errors.Is(err, engine.ErrImageNotFound) {
			t.Errorf("RemoveImage(missing) = %v, want ErrImageNotFound", err)
		}
	})

	t.Run("build, inspect, tag, remove", func(t *testing.T) {
		tag := "clank-test/tiny:" + testdocker.RandomSuffix()
		tarball, err := docker.TarContext([]docker.TarFile{
			{Name: "Dockerfile", Body: []byte("FROM scratch\nCOPY hello.txt /\nLABEL dev.clank.test.kind=tiny\n")},
			{Name: "hello.txt", Body: []byte("hello from " + tag + "\n")}, // an image of this run's alone
		})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		id, err := rt.BuildImage(ctx, tarball, tag, map[string]string{testdocker.TestLabel: "1"}, &out)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { testdocker.RemoveImage(t, rt, tag) })
		if !strings.HasPrefix(id, "sha256:") || !strings.Contains(out.String(), "COPY hello.txt") {
			t.Errorf("BuildImage = %q, output %q", id, out.String())
		}
		info, err := rt.InspectImage(ctx, tag)
		if err != nil || info.ID != id {
			t.Fatalf("InspectImage(%s) = %+v, %v; want ID %s", tag, info, err, id)
		}
		other := tag + "-again"
		if err := rt.TagImage(ctx, tag, other); err != nil {
			t.Fatal(err)
		}
		if info, err := rt.InspectImage(ctx, other); err != nil || info.ID != id {
			t.Errorf("InspectImage(%s) after TagImage = %+v, %v", other, info, err)
		}
		for _, ref := range []string{other, tag} {
			if err := rt.RemoveImage(ctx, ref); err != nil {
				t.Errorf("RemoveImage(%s) = %v", ref, err)
			}
		}
		if _, err := rt.InspectImage(ctx, id); !errors.Is(err, engine.ErrImageNotFound) {
			t.Errorf("InspectImage after removing both tags = %v, want ErrImageNotFound", err)
		}
	})

	t.Run("failed builds", func(t *testing.T) {
		for _, tt := range []struct {
			dockerfile, want string
			midStream        bool // the engine reports it inside the 200 stream
		}{
			{"FROM scratch\nCOPY missing.txt /\n", "missing.txt", true},
			{"FROM scratch\nFROBNICATE now\n", "frobnicate", false},
		} {
			tarball, err := docker.TarContext([]docker.TarFile{{Name: "Dockerfile", Body: []byte(tt.dockerfile)}})
			if err != nil {
				t.Fatal(err)
			}
			tag := "clank-test/broken:" + testdocker.RandomSuffix()
			_, err = rt.BuildImage(ctx, tarball, tag, map[string]string{testdocker.TestLabel: "1"}, io.Discard)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tt.want) {
				t.Errorf("BuildImage(%q) = %v; want an error naming %q", tt.dockerfile, err, tt.want)
			}
			var streamErr *docker.StreamError
			if errors.As(err, &streamErr) != tt.midStream {
				t.Errorf("BuildImage(%q) = %v; reported in the stream: %v, want %v", tt.dockerfile, err, !tt.midStream, tt.midStream)
			}
			if _, err := rt.InspectImage(ctx, tag); !errors.Is(err, engine.ErrImageNotFound) {
				t.Errorf("a failed build left image %s (%v)", tag, err)
			}
		}
	})

	t.Run("pull from an unreachable registry", func(t *testing.T) {
		err := rt.PullImage(ctx, "127.0.0.1:1/clank-test/none:latest")
		if err == nil || !strings.Contains(err.Error(), "pull image 127.0.0.1:1/clank-test/none:latest") {
			t.Errorf("PullImage = %v, want an error naming the image", err)
		}
	})
}

func TestUnreachableEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := docker.New(ctx)
	if !docker.IsUnreachable(err) {
		t.Fatalf("New with no engine = %v; want an unreachable error", err)
	}
	if !strings.HasPrefix(err.Error(), "cannot reach the Docker engine at unix:///nonexistent/docker.sock: ") {
		t.Errorf("error = %q; want it to name the host plainly", err)
	}
	rt, err := docker.Connect(ctx)
	if rt == nil || !docker.IsUnreachable(err) {
		t.Errorf("Connect with no engine = %v, %v; want a Runtime and an unreachable error", rt, err)
	} else if err := rt.Ping(ctx); !docker.IsUnreachable(err) {
		t.Errorf("Ping with no engine = %v", err)
	}
	if docker.IsUnreachable(engine.ErrImageNotFound) {
		t.Error("IsUnreachable(ErrImageNotFound) = true")
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %s %q", url, resp.Status, b)
	}
	return string(b)
}

// signalWriter closes started at the first write and seen once what was
// written contains want. Logs writes from its own goroutine, so it only
// reports through the channels.
type signalWriter struct {
	want    string
	seen    chan struct{}
	started chan struct{}
	buf     []byte
}

func (w *signalWriter) Write(p []byte) (int, error) {
	if w.buf == nil && len(p) > 0 {
		close(w.started)
	}
	if w.buf == nil || !bytes.Contains(w.buf, []byte(w.want)) {
		w.buf = append(w.buf, p...)
		if bytes.Contains(w.buf, []byte(w.want)) {
			close(w.seen)
		}
	}
	return len(p), nil
}
