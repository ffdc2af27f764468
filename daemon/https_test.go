package daemon_test

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/daemon"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testacme"
	"github.com/clank-dev/clank/internal/testdocker"
)

// within bounds a deployment or a certificate on a loaded 2-core machine.
const within = 60 * time.Second

// httpsWorld is a real daemon (Docker, store, router, engine) with HTTPS on, its
// certificates from an in-process Pebble that validates against the daemon's own
// listeners.
type httpsWorld struct {
	t      *testing.T
	d      *daemon.Daemon
	c      *api.Client
	ca     *testacme.CA
	events *eventLog
}

type eventLog struct {
	mu  sync.Mutex
	all []api.Event
}

func (l *eventLog) since(n int) ([]api.Event, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]api.Event(nil), l.all[n:]...), len(l.all)
}

func startHTTPS(t *testing.T) *httpsWorld {
	t.Helper()
	rt := testdocker.Require(t)
	w := &httpsWorld{t: t, ca: testacme.Start(t, testacme.Options{}), events: &eventLog{}}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("CLANK_TEST_ACME_LOG") == "1" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := daemon.Start(ctx, daemon.Config{
		DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0",
		ACMECA: w.ca.Directory(), ACMERoots: w.ca.Roots(), CertRetry: 200 * time.Millisecond,
		KeepImages: -1, DrainTimeout: time.Second, Logger: logger,
	})
	if err != nil {
		t.Fatalf("start the daemon: %v", err)
	}
	w.d, w.c = d, api.NewClient(d.Socket())
	t.Cleanup(func() { d.Close(context.Background()) })
	testdocker.Cleanup(t, rt, map[string]string{engine.LabelOwner: d.Engine.Owner()})
	w.ca.Validate(port(t, d.RouterAddr()), port(t, d.HTTPSAddr()))

	sub, cancelSub := context.WithCancel(context.Background())
	t.Cleanup(cancelSub)
	ch, err := w.c.Subscribe(sub)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range ch {
			w.events.mu.Lock()
			w.events.all = append(w.events.all, ev)
			w.events.mu.Unlock()
		}
	}()
	return w
}

func port(t *testing.T, addr string) int {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a.Port
}

// waitEvent waits for a certificate event of service whose message holds text,
// from event index from on; it returns the event and the index after it.
func (w *httpsWorld) waitEvent(from int, service, text string) (api.Event, int) {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for {
		evs, _ := w.events.since(from)
		for i, ev := range evs {
			if ev.Type == api.EventCertificate && ev.Service == service && strings.Contains(ev.Message, text) {
				return ev, from + i + 1
			}
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("no certificate event of %s with %q within %s; certs: %+v", service, text, within, w.d.Certificates())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *httpsWorld) mark() int {
	_, n := w.events.since(0)
	return n
}

// deploy runs an action through the API and waits for the deployment to be ACTIVE.
func (w *httpsWorld) deploy(req api.ActionRequest) api.Deployment {
	w.t.Helper()
	req.TriggeredBy = "test"
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	d, err := w.c.Act(ctx, req)
	if err != nil {
		w.t.Fatalf("%s: %v", req.Kind, err)
	}
	for {
		got, _, err := w.c.Deployment(ctx, d.ID)
		switch {
		case err == nil && got.Status == "ACTIVE":
			return got
		case err == nil && got.Status == "FAILED":
			w.t.Fatalf("%s #%d failed: %s", req.Kind, got.Number, got.FailureReason)
		case ctx.Err() != nil:
			w.t.Fatalf("%s #%d not ACTIVE within %s (%s)", req.Kind, got.Number, within, got.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (w *httpsWorld) setDomains(service string, domains ...string) {
	w.t.Helper()
	if _, err := w.c.UpdateService(context.Background(), service, api.ServiceSpec{Domains: domains}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *httpsWorld) getHTTPS(host string) (*http.Response, string, error) {
	return w.ca.GetHTTPS(w.d.HTTPSAddr(), host, "/")
}

// getHTTP asks the router's plain-HTTP listener, without following redirects.
func (w *httpsWorld) getHTTP(host, path string) (*http.Response, string) {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+w.d.RouterAddr()+path, nil)
	req.Host = host
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, strings.TrimSpace(string(body))
}

func (w *httpsWorld) cert(domain string) api.Certificate {
	w.t.Helper()
	list, err := w.c.Certificates(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	for _, c := range list {
		if c.Domain == domain {
			return c
		}
	}
	w.t.Fatalf("no certificate for %s in %+v", domain, list)
	return api.Certificate{}
}

func (w *httpsWorld) serial(host string) *big.Int {
	w.t.Helper()
	res, _, err := w.getHTTPS(host)
	if err != nil {
		w.t.Fatalf("HTTPS for %s: %v", host, err)
	}
	return res.TLS.PeerCertificates[0].SerialNumber
}

// TestHTTPSThroughTheRouter: a deployed service's domain gets a certificate from the
// ACME CA, validated against the daemon's own listeners; HTTPS (HTTP/2) reaches the
// real container through the router; plain HTTP redirects; a rollback that brings a
// domain back brings its certificate back; a CA that is down or hangs never stops a
// deployment, its HTTP traffic, or the daemon's shutdown.
func TestHTTPSThroughTheRouter(t *testing.T) {
	w := startHTTPS(t)
	rt := testdocker.Require(t)
	v1, v2 := testdocker.SampleImage(t, rt, "v1"), testdocker.SampleImage(t, rt, "v2")
	const web, shop = "web.clank-test.example", "shop.clank-test.example"
	appPort, path, interval := testdocker.SampleAppPort, "/healthz", "200ms"
	if _, err := w.c.CreateService(context.Background(), api.ServiceSpec{Name: "web", Image: &v1, Port: &appPort,
		HealthPath: &path, HealthInterval: &interval, Domains: []string{web, "web.localhost", "127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	var first api.Deployment
	mark := w.mark()

	t.Run("issued for a deployed domain and served through the router", func(t *testing.T) {
		first = w.deploy(api.ActionRequest{Kind: "deploy", Service: "web"})
		w.waitEvent(mark, "web", web+" is served")
		res, body, err := w.getHTTPS(web)
		if err != nil {
			t.Fatalf("HTTPS through the router, checked against the CA's root: %v", err)
		}
		if res.ProtoMajor != 2 || body != "hello from v1" {
			t.Fatalf("HTTPS: %s %q, want HTTP/2 from the container", res.Proto, body)
		}
		list, err := w.c.Certificates(context.Background())
		if err != nil || len(list) != 1 {
			t.Fatalf("certs: %+v %v, want only %s (never web.localhost or an IP)", list, err, web)
		}
		if c := list[0]; c.Service != "web" || c.Status != "valid" || c.Issuer == "" || c.NotAfter == nil || c.LastError != "" {
			t.Fatalf("certificate %+v", c)
		}
		if n := w.ca.Orders(); n != 1 {
			t.Fatalf("the CA got %d orders, want 1", n)
		}
	})

	t.Run("plain HTTP redirects to HTTPS, per service", func(t *testing.T) {
		res, _ := w.getHTTP(web, "/a?b=c")
		if want := "https://" + web + ":" + strconv.Itoa(port(t, w.d.HTTPSAddr())) + "/a?b=c"; res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
			t.Fatalf("plain HTTP: %d %q, want 308 to %s", res.StatusCode, res.Header.Get("Location"), want)
		}
		if res, body := w.getHTTP("web.localhost", "/"); res.StatusCode != http.StatusOK || body != "hello from v1" {
			t.Fatalf("web.localhost (no certificate): %d %q", res.StatusCode, body)
		}
		off := false
		svc, err := w.c.UpdateService(context.Background(), "web", api.ServiceSpec{HTTPSRedirect: &off})
		if err != nil || svc.HTTPSRedirect {
			t.Fatalf("https_redirect off: %+v %v", svc, err)
		}
		if res, body := w.getHTTP(web, "/"); res.StatusCode != http.StatusOK || body != "hello from v1" {
			t.Fatalf("redirect off: %d %q, want the container at once", res.StatusCode, body)
		}
		on := true
		if _, err := w.c.UpdateService(context.Background(), "web", api.ServiceSpec{HTTPSRedirect: &on}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a rollback brings a domain back with its certificate", func(t *testing.T) {
		serial := w.serial(web)
		w.setDomains("web", shop)
		mark := w.mark()
		w.deploy(api.ActionRequest{Kind: "deploy", Service: "web", Image: v2})
		w.waitEvent(mark, "web", shop+" is served")
		if _, _, err := w.getHTTPS(web); err == nil {
			t.Fatalf("%s is still served over HTTPS after the deployment that dropped it", web)
		}
		orders := w.ca.Orders()
		mark = w.mark()
		w.deploy(api.ActionRequest{Kind: "rollback", Service: "web", Deployment: first.ID})
		w.waitEvent(mark, "web", web+" is served")
		if got := w.serial(web); got.Cmp(serial) != 0 {
			t.Fatalf("%s came back with another certificate (serial %s, was %s)", web, got, serial)
		}
		if _, body, _ := w.getHTTPS(web); body != "hello from v1" {
			t.Fatalf("after the rollback HTTPS answers %q", body)
		}
		if n := w.ca.Orders(); n != orders {
			t.Fatalf("the rollback asked the CA for %d new certificates", n-orders)
		}
	})

	t.Run("a CA that is down fails nothing and is retried", func(t *testing.T) {
		const down = "down.clank-test.example"
		w.ca.SetMode(testacme.Down)
		w.setDomains("web", web, down)
		mark := w.mark()
		w.deploy(api.ActionRequest{Kind: "deploy", Service: "web", Image: v2})
		if res, body := w.getHTTP(down, "/"); res.StatusCode != http.StatusOK || body != "hello from v2" {
			t.Fatalf("HTTP for %s with its certificate failing: %d %q", down, res.StatusCode, body)
		}
		ev, next := w.waitEvent(mark, "web", down+" could not be obtained")
		if !strings.Contains(ev.Message, "retrying in") {
			t.Fatalf("failure event %q does not say it retries", ev.Message)
		}
		if c := w.cert(down); c.Status != "failed" || c.LastError == "" {
			t.Fatalf("certificate with the CA down: %+v", c)
		}
		w.waitEvent(next, "web", down+" could not be obtained") // a retry, failing again
		w.ca.SetMode(testacme.Up)
		w.waitEvent(next, "web", down+" is served")
		if _, body, err := w.getHTTPS(down); err != nil || body != "hello from v2" {
			t.Fatalf("HTTPS for %s once the CA is back: %q %v", down, body, err)
		}
	})

	t.Run("a CA that hangs blocks neither a deployment nor shutdown", func(t *testing.T) {
		w.ca.SetMode(testacme.Hang)
		w.setDomains("web", web, "hang.clank-test.example")
		w.deploy(api.ActionRequest{Kind: "deploy", Service: "web", Image: v1})
		w.ca.WaitHeld(t, within)
		t0 := time.Now()
		w.d.Close(context.Background())
		if d := time.Since(t0); d > 15*time.Second {
			t.Fatalf("the daemon took %s to stop with the CA hanging", d)
		}
	})
}
