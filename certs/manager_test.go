package certs

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine/edge"
	"github.com/clank-dev/clank/internal/testacme"
)

// within bounds every wait on the CA: on a loaded 2-core machine under -race an
// issuance takes a few seconds at worst.
const within = 60 * time.Second

// edgeBench is a Manager behind real HTTP and HTTPS listeners on loopback, as the
// daemon wires it, with Pebble validating against those listeners.
type edgeBench struct {
	ca                  *testacme.CA
	m                   *Manager
	httpAddr, httpsAddr string
	events              *eventLog
}

type eventLog struct {
	mu     sync.Mutex
	events []Event
	added  chan struct{}
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
}

// wait returns the first event from index from on that matches, or fails the test.
func (l *eventLog) wait(t *testing.T, from int, what string, match func(Event) bool) (Event, int) {
	t.Helper()
	deadline := time.After(within)
	for {
		l.mu.Lock()
		for i := from; i < len(l.events); i++ {
			if match(l.events[i]) {
				e := l.events[i]
				l.mu.Unlock()
				return e, i + 1
			}
		}
		seen := fmt.Sprint(l.events)
		l.mu.Unlock()
		select {
		case <-l.added:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no event %s within %s; events: %s", what, within, seen)
		}
	}
}

func obtainedFor(domain string) func(Event) bool {
	return func(e Event) bool { return e.Domain == domain && !e.Failed && strings.Contains(e.Message, "is served") }
}

func failedFor(domain string) func(Event) bool {
	return func(e Event) bool { return e.Domain == domain && e.Failed }
}

type benchOptions struct {
	ca         testacme.Options
	noHTTP01   bool // the manager is not told of the HTTP listener: TLS-ALPN-01 only
	noTLSALPN  bool // nor of the HTTPS one: HTTP-01 only
	renewEvery time.Duration
}

func startBench(t *testing.T, o benchOptions) *edgeBench {
	t.Helper()
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &edgeBench{httpAddr: httpLn.Addr().String(), httpsAddr: httpsLn.Addr().String(), events: &eventLog{added: make(chan struct{}, 1)}}
	b.ca = testacme.Start(t, o.ca)
	b.ca.Validate(httpLn.Addr().(*net.TCPAddr).Port, httpsLn.Addr().(*net.TCPAddr).Port)
	opts := Options{
		Dir: t.TempDir(), CA: b.ca.Directory(), TrustedRoots: b.ca.Roots(),
		HTTPAddr: b.httpAddr, HTTPSAddr: b.httpsAddr,
		RetryMin: 200 * time.Millisecond, RetryMax: time.Second,
		RenewCheckInterval: o.renewEvery,
		Notify:             b.events.add,
		Logger:             testLogger(),
	}
	if o.noHTTP01 {
		opts.HTTPAddr = ""
	}
	if o.noTLSALPN {
		opts.HTTPSAddr = ""
	}
	if b.m, err = New(opts); err != nil {
		t.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "app %s %s", r.Host, r.Proto)
	})
	httpSrv := edge.NewServer(b.m.HTTPHandler(app), edge.ServerOptions{})
	httpsSrv := edge.NewServer(app, edge.ServerOptions{})
	httpsSrv.TLSConfig = b.m.TLSConfig()
	go httpSrv.Serve(httpLn)
	go httpsSrv.ServeTLS(httpsLn, "", "")
	t.Cleanup(func() {
		b.m.Close()
		httpSrv.Close()
		httpsSrv.Close()
	})
	return b
}

func testLogger() *slog.Logger {
	if os.Getenv("CLANK_TEST_ACME_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func (b *edgeBench) getHTTPS(host, path string) (*http.Response, string, error) {
	return b.ca.GetHTTPS(b.httpsAddr, host, path)
}

// getHTTP asks the HTTP listener for path with Host host, without following redirects.
func (b *edgeBench) getHTTP(t *testing.T, host, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+b.httpAddr+path, nil)
	req.Host = host
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func (b *edgeBench) status(t *testing.T, domain string) Status {
	t.Helper()
	for _, s := range b.m.List() {
		if s.Domain == domain {
			return s
		}
	}
	t.Fatalf("%s is not in the list: %+v", domain, b.m.List())
	return Status{}
}

func TestQualifies(t *testing.T) {
	for domain, want := range map[string]bool{
		"web.example.com": true, "Shop.Example.COM.": true, "a.b.c.example": true,
		"localhost": false, "web.localhost": false, "a.b.localhost": false, "WEB.LOCALHOST.": false,
		"127.0.0.1": false, "10.1.2.3": false, "93.184.216.34": false, "::1": false, "2001:db8::1": false,
		"printer.local": false, "db.internal": false, "web": false, "": false,
	} {
		if got := Qualifies(domain); got != want {
			t.Errorf("Qualifies(%q) = %v, want %v", domain, got, want)
		}
	}
}

// TestIssuesAndServes: each challenge type alone, validated by Pebble against the real
// listeners; the certificate is served with HTTP/2 and checks out against the CA's
// root; localhost names and IPs are never asked of the CA.
func TestIssuesAndServes(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts benchOptions
	}{
		{"http-01", benchOptions{noTLSALPN: true}},
		{"tls-alpn-01", benchOptions{noHTTP01: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBench(t, tc.opts)
			const domain = "web.clank-test.example"
			t0 := time.Now()
			b.m.Want("web", []string{domain, "web.localhost", "localhost", "127.0.0.1", "10.0.0.7"})
			if d := time.Since(t0); d > 5*time.Second { // a loaded machine's stall, not a wait on the CA's retries
				t.Fatalf("Want took %s: it must not wait for the CA", d)
			}
			b.events.wait(t, 0, "obtained for "+domain, obtainedFor(domain))

			res, body, err := b.getHTTPS(domain, "/hello")
			if err != nil {
				t.Fatalf("HTTPS with the issued certificate, checked against the CA's root: %v", err)
			}
			if res.ProtoMajor != 2 || body != "app "+domain+" HTTP/2.0" {
				t.Fatalf("HTTPS answer %s %q, want HTTP/2 from the app", res.Proto, body)
			}
			if got := res.TLS.PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != domain {
				t.Fatalf("served certificate for %v, want %s", got, domain)
			}

			list := b.m.List()
			if len(list) != 1 {
				t.Fatalf("List = %+v, want only %s (no localhost name or IP)", list, domain)
			}
			s := list[0]
			if s.Service != "web" || s.State != StateValid || s.Issuer == "" || s.LastError != "" || time.Until(s.NotAfter) < 24*time.Hour {
				t.Fatalf("status %+v, want web, valid, an issuer, no error and months ahead", s)
			}
			if n := b.ca.Orders(); n != 1 {
				t.Fatalf("the CA got %d orders, want 1: only %s qualifies", n, domain)
			}
			// A name with no certificate gets no TLS answer at all.
			if _, _, err := b.getHTTPS("web.localhost", "/"); err == nil {
				t.Fatal("HTTPS for web.localhost answered: no certificate should exist for it")
			}
		})
	}
}

// TestRedirectsToHTTPS: with a certificate, plain HTTP gets a 308 to the same URL on
// HTTPS, except ACME challenge paths, names without a certificate, and services whose
// redirect is off.
func TestRedirectsToHTTPS(t *testing.T) {
	b := startBench(t, benchOptions{})
	const domain = "shop.clank-test.example"
	b.m.Want("shop", []string{domain, "shop.localhost"})
	b.events.wait(t, 0, "obtained", obtainedFor(domain))

	res, _ := b.getHTTP(t, domain, "/cart?id=7&x=%2F")
	_, httpsPort, _ := net.SplitHostPort(b.httpsAddr)
	want := "https://" + domain + ":" + httpsPort + "/cart?id=7&x=%2F"
	if res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
		t.Fatalf("plain HTTP: %d to %q, want 308 to %q", res.StatusCode, res.Header.Get("Location"), want)
	}
	if res, body := b.getHTTP(t, domain, "/.well-known/acme-challenge/unknown-token"); res.StatusCode == http.StatusPermanentRedirect {
		t.Fatalf("a challenge path was redirected (%q)", body)
	}
	if res, body := b.getHTTP(t, "shop.localhost", "/"); res.StatusCode != http.StatusOK || body != "app shop.localhost HTTP/1.1" {
		t.Fatalf("a name without a certificate: %d %q, want the app", res.StatusCode, body)
	}
	b.m.Redirect("shop", false)
	if res, body := b.getHTTP(t, domain, "/"); res.StatusCode != http.StatusOK || body != "app "+domain+" HTTP/1.1" {
		t.Fatalf("redirect off: %d %q, want the app", res.StatusCode, body)
	}
	b.m.Redirect("shop", true)
	if res, _ := b.getHTTP(t, domain, "/"); res.StatusCode != http.StatusPermanentRedirect {
		t.Fatalf("redirect on again: %d", res.StatusCode)
	}
}

// TestRenewsInTheBackground: Pebble issues certificates that live 12 seconds, and the
// manager serves a new one before the first expires, with nobody asking.
func TestRenewsInTheBackground(t *testing.T) {
	b := startBench(t, benchOptions{ca: testacme.Options{Validity: 12 * time.Second}, renewEvery: 300 * time.Millisecond})
	const domain = "renew.clank-test.example"
	b.m.Want("renew", []string{domain})
	_, next := b.events.wait(t, 0, "obtained", obtainedFor(domain))
	res, _, err := b.getHTTPS(domain, "/")
	if err != nil {
		t.Fatal(err)
	}
	first := res.TLS.PeerCertificates[0]

	b.events.wait(t, next, "renewed", func(e Event) bool { return e.Domain == domain && strings.Contains(e.Message, "renewed") })
	deadline := time.Now().Add(within)
	for {
		res, _, err := b.getHTTPS(domain, "/")
		if err == nil && res.TLS.PeerCertificates[0].SerialNumber.Cmp(first.SerialNumber) != 0 {
			// Pebble's renewal window (ARI) for so short a certificate opens
			// at its issue, and times are whole seconds: a renewal within the
			// first second expires with it.
			if res.TLS.PeerCertificates[0].NotAfter.Before(first.NotAfter) {
				t.Fatalf("renewed certificate expires %s, before the first (%s)", res.TLS.PeerCertificates[0].NotAfter, first.NotAfter)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate is not served within %s (last error %v)", within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if s := b.status(t, domain); s.State != StateValid || s.LastError != "" {
		t.Fatalf("after renewal: %+v", s)
	}
}

// TestFailingCARetriesWithBackoff: a CA that is down, then one that answers errors,
// never holds Want up; each failure is an event that says why, the attempts go on,
// and the certificate comes once the CA is back.
func TestFailingCARetriesWithBackoff(t *testing.T) {
	b := startBench(t, benchOptions{})
	const domain = "down.clank-test.example"
	b.ca.SetMode(testacme.Down)
	t0 := time.Now()
	b.m.Want("api", []string{domain})
	if d := time.Since(t0); d > 5*time.Second { // a loaded machine's stall, not a wait on the CA's retries
		t.Fatalf("Want took %s with the CA down", d)
	}
	e, next := b.events.wait(t, 0, "failed", failedFor(domain))
	if e.Service != "api" || !strings.Contains(e.Message, "retrying in") {
		t.Fatalf("failure event %+v: want the service and when it retries", e)
	}
	if s := b.status(t, domain); s.State != StateFailed || s.LastError == "" {
		t.Fatalf("status with the CA down: %+v", s)
	}
	b.ca.SetMode(testacme.Broken)
	e, next = b.events.wait(t, next, "a failure from the broken CA", func(e Event) bool {
		return failedFor(domain)(e) && strings.Contains(e.Message, "broken on purpose")
	})
	if strings.Contains(e.Message, "\n") {
		t.Fatalf("failure message spans lines: %q", e.Message)
	}
	b.ca.SetMode(testacme.Up)
	b.events.wait(t, next, "obtained once the CA is back", obtainedFor(domain))
	if s := b.status(t, domain); s.State != StateValid || s.LastError != "" {
		t.Fatalf("status once obtained: %+v", s)
	}
}

// TestHangingCADoesNotBlock: a CA that accepts requests and never answers holds up
// neither Want nor Close.
func TestHangingCADoesNotBlock(t *testing.T) {
	b := startBench(t, benchOptions{})
	b.ca.SetMode(testacme.Hang)
	t0 := time.Now()
	b.m.Want("web", []string{"hang.clank-test.example"})
	b.m.Want("web", []string{"hang.clank-test.example", "hang2.clank-test.example"})
	if d := time.Since(t0); d > 5*time.Second { // a loaded machine's stall, not a wait on the CA's retries
		t.Fatalf("Want took %s with the CA hanging", d)
	}
	b.ca.WaitHeld(t, within) // an ACME request is in the CA's hands
	t1 := time.Now()
	b.m.Close()
	if d := time.Since(t1); d > closeWait+time.Second {
		t.Fatalf("Close took %s with the CA hanging", d)
	}
	if s := b.status(t, "hang.clank-test.example"); s.State != StateObtaining {
		t.Fatalf("status: %+v", s)
	}
}

// TestDomainComesBackWithItsCertificate: a domain a service stops serving is no longer
// served over TLS; when it comes back (a rollback), its certificate is served again
// from storage, without asking the CA.
func TestDomainComesBackWithItsCertificate(t *testing.T) {
	b := startBench(t, benchOptions{})
	const a, c = "a.clank-test.example", "c.clank-test.example"
	b.m.Want("web", []string{a})
	_, next := b.events.wait(t, 0, "obtained "+a, obtainedFor(a))
	res, _, err := b.getHTTPS(a, "/")
	if err != nil {
		t.Fatal(err)
	}
	serial := res.TLS.PeerCertificates[0].SerialNumber

	b.m.Want("web", []string{c})
	_, next = b.events.wait(t, next, "obtained "+c, obtainedFor(c))
	if _, _, err := b.getHTTPS(a, "/"); err == nil {
		t.Fatalf("%s is still served after the service dropped it", a)
	}
	if list := b.m.List(); len(list) != 1 || list[0].Domain != c {
		t.Fatalf("List = %+v, want only %s", list, c)
	}
	orders := b.ca.Orders()

	b.m.Want("web", []string{a, c}) // the rollback's snapshot
	b.events.wait(t, next, "served again "+a, obtainedFor(a))
	res, _, err = b.getHTTPS(a, "/")
	if err != nil {
		t.Fatalf("%s after it came back: %v", a, err)
	}
	if got := res.TLS.PeerCertificates[0].SerialNumber; got.Cmp(serial) != 0 {
		t.Fatalf("%s came back with a new certificate (serial %s, was %s): it should come from storage", a, got, serial)
	}
	if n := b.ca.Orders(); n != orders {
		t.Fatalf("the CA got %d more orders for a certificate it had issued", n-orders)
	}
}
