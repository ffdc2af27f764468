package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
)

// collector is a well-behaved receiver: it keeps every body it gets.
type collector struct {
	mu     sync.Mutex
	bodies [][]byte
	got    chan struct{}
}

func newCollector(t *testing.T) (*collector, string) {
	c := &collector{got: make(chan struct{}, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("X-Clank-Event") == "" {
			t.Errorf("a notification came as %s %s, event %q", r.Method, r.Header.Get("Content-Type"), r.Header.Get("X-Clank-Event"))
		}
		c.mu.Lock()
		c.bodies = append(c.bodies, b)
		c.mu.Unlock()
		c.got <- struct{}{}
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

func (c *collector) wait(t *testing.T, n int) []api.Notification {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-c.got:
		case <-timeout:
			t.Fatalf("%d notifications of %d arrived", i, n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []api.Notification
	for _, b := range c.bodies {
		var note api.Notification
		if err := json.Unmarshal(b, &note); err != nil {
			t.Fatalf("body %q: %v", b, err)
		}
		out = append(out, note)
	}
	return out
}

func strptr(s string) *string { return &s }

// events is one of each event the notifier turns into a notification, and
// some it does not. The first deployment carries env values, as a view with
// --show-env would: they must not reach a receiver.
func events() ([]api.Event, []string) {
	dep := func(status string) *api.Deployment {
		return &api.Deployment{ID: "d1", Number: 1, Service: "web", Status: status, EnvKeys: []string{"TOKEN"}, Env: map[string]string{"TOKEN": "s3cret-value"}}
	}
	crashed := dep("ACTIVE")
	crashed.Runtime = strptr(engine.RuntimeCrashed)
	healthy := dep("ACTIVE")
	healthy.Runtime = strptr(engine.RuntimeHealthy)
	return []api.Event{
			{Type: engine.EventDeployment, Service: "web", Status: "ACTIVE", Deployment: dep("ACTIVE"), Message: "#1 is ACTIVE"},
			{Type: engine.EventDeployment, Service: "web", Status: "HEALTH_CHECKING", Deployment: dep("HEALTH_CHECKING")},
			{Type: engine.EventDeployment, Service: "web", Status: "FAILED", Deployment: dep("FAILED"), Message: "health check failed"},
			{Type: engine.EventRuntime, Service: "web", Status: "ACTIVE", Deployment: crashed, Message: "crashed: exit 137"},
			{Type: engine.EventRuntime, Service: "web", Status: "ACTIVE", Deployment: healthy, Message: "healthy again"},
			{Type: engine.EventWatch, Service: "web", Status: "ACTIVE", Deployment: dep("ACTIVE"), Message: "#1 tripped its watch"},
			{Type: engine.EventAutoRollback, Service: "web", Status: "DEPLOYING", Deployment: dep("DEPLOYING"), Message: "rolling #2 back"},
			{Type: engine.EventAutoRollbackRefused, Service: "web", Status: "ACTIVE", Deployment: dep("ACTIVE"), Message: "image gone"},
			{Type: engine.EventDocker, Status: "down"},
			{Type: engine.EventTraffic},
		}, []string{NotifyDeploymentActive, NotifyDeploymentFailed, NotifyCrash, NotifyWatchTripped,
			NotifyAutoRollback, NotifyRollbackRefused}
}

// feed is an event source for notifier.run: the events, then nothing until
// ctx ends.
func feed(evs []api.Event) func(context.Context) <-chan api.Event {
	var once sync.Once
	return func(ctx context.Context) <-chan api.Event {
		ch := make(chan api.Event, len(evs))
		once.Do(func() {
			for _, ev := range evs {
				ch <- ev
			}
		})
		go func() {
			<-ctx.Done()
			close(ch)
		}()
		return ch
	}
}

// Each event a receiver should hear of becomes one POST, in order, with no
// env value in it; the others are not sent.
func TestNotificationsAreSentWithoutEnvValues(t *testing.T) {
	c, url := newCollector(t)
	n := newNotifier([]string{url}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	evs, want := events()
	go func() {
		defer close(done)
		n.run(ctx, feed(evs))
	}()
	notes := c.wait(t, len(want))
	cancel()
	<-done
	for i, note := range notes {
		if note.Event != want[i] || note.Service != "web" || note.Deployment == nil || note.Host == "" {
			t.Errorf("notification %d: %+v, want %s", i, note, want[i])
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.bodies {
		if bytes.Contains(b, []byte("s3cret-value")) {
			t.Fatalf("an env value reached a receiver: %s", b)
		}
	}
	if len(c.bodies) != len(want) {
		t.Fatalf("%d notifications, want %d", len(c.bodies), len(want))
	}
}

// Hostile receivers (one hangs, one answers 500, one closes the connection)
// get their retries and their timeouts, and cost the others nothing: the
// well-behaved receiver hears everything at once, handing notifications
// over never waits, a receiver's queue never grows past its bound, and the
// notifier stops promptly.
func TestHostileReceiversAreSurvived(t *testing.T) {
	release := make(chan struct{})
	var hangs, fails, closes atomic.Int64
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hangs.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fails.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	defer fail.Close()
	closer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		closes.Add(1)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer closer.Close()
	good, goodURL := newCollector(t)

	var logged bytes.Buffer
	var logMu sync.Mutex
	n := newNotifier([]string{hang.URL, fail.URL, closer.URL, goodURL}, slog.New(slog.NewTextHandler(syncWriter{&logMu, &logged}, nil)))
	n.timeout, n.retryWait = 300*time.Millisecond, 20*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.run(ctx, feed(nil))
	}()

	// A burst bigger than a queue: handing it over does not wait.
	note := api.Notification{Event: NotifyCrash, Service: "web"}
	start := time.Now()
	const burst = NotifyQueue + 50
	for range burst {
		n.enqueue(note)
	}
	if took := time.Since(start); took > 3*time.Second { // a hanging receiver would hold it for ever
		t.Errorf("handing %d notifications over took %s", burst, took)
	}
	for _, r := range n.receivers {
		if len(r.queue) > NotifyQueue {
			t.Fatalf("a queue holds %d, past its bound %d", len(r.queue), NotifyQueue)
		}
	}
	good.wait(t, NotifyQueue) // the good receiver is not held up by the others
	waitUntil(t, func() bool {
		return fails.Load() >= NotifyAttempts && closes.Load() >= NotifyAttempts && hangs.Load() >= 1
	})
	if n.receivers[0].dropped.Load() == 0 {
		t.Error("the hanging receiver's full queue dropped nothing")
	}
	logMu.Lock()
	log := logged.String()
	logMu.Unlock()
	if !strings.Contains(log, "notifications dropped") || !strings.Contains(log, hang.URL) {
		t.Errorf("no log line says notifications were dropped:\n%s", log)
	}

	stopped := time.Now()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the notifier did not stop with its receivers hanging")
	}
	if took := time.Since(stopped); took > 4*time.Second {
		t.Errorf("stopping took %s", took)
	}
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestParseNotifyURLs(t *testing.T) {
	got, err := ParseNotifyURLs("http://a.example/hook, https://b.example/x", "http://127.0.0.1:9/y")
	if err != nil || len(got) != 3 || got[1] != "https://b.example/x" {
		t.Fatalf("got %v %v", got, err)
	}
	if got, err := ParseNotifyURLs(""); err != nil || len(got) != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"ftp://x/y", "hooks.example.com", "http://"} {
		if _, err := ParseNotifyURLs(bad); err == nil || !strings.Contains(err.Error(), "invalid --notify URL") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
