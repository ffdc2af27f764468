// Package testacme runs a real ACME CA for tests, in process: Pebble (Let's
// Encrypt's test CA: its ca, db, va and wfe packages) behind an HTTPS front
// that a test can take down, make hang or make answer errors, and a DNS server
// of its own that answers every name with 127.0.0.1, so that Pebble validates
// the real HTTP-01 and TLS-ALPN-01 challenges against the listeners under test.
// Nothing is always valid, and nothing leaves loopback.
package testacme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// Mode is how the CA's front answers.
type Mode int

const (
	Up     Mode = iota // Pebble answers
	Down               // every connection is closed at once, as a CA that is down
	Hang               // requests are held until the test ends
	Broken             // every request gets 500 with an ACME problem
)

// Options configure a CA. The zero value is ready to use.
type Options struct {
	// Validity of the certificates it issues (Pebble's default, 90 days, if 0); a
	// short one makes certmagic renew them.
	Validity time.Duration
}

// CA is a running test CA.
type CA struct {
	t      testing.TB
	front  *httptest.Server
	dnsSrv *dns.Server
	opts   Options

	mu      sync.Mutex
	mode    Mode
	pebble  http.Handler // nil until Validate
	ca      *ca.CAImpl
	hung    chan struct{} // closed at the end of the test: held requests return
	held    chan struct{} // a value each time a request is held (Hang)
	orders  int           // new-order requests seen (a CA that is asked for a certificate)
	logFile io.Writer
}

// Start starts the front and the DNS server; Pebble comes with Validate, once the
// ports to validate against are known. Everything stops when the test ends.
func Start(t testing.TB, opts Options) *CA {
	t.Helper()
	c := &CA{t: t, opts: opts, hung: make(chan struct{}), held: make(chan struct{}, 1), logFile: io.Discard}
	if os.Getenv("CLANK_TEST_ACME_LOG") == "1" {
		c.logFile = os.Stderr
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.dnsSrv = &dns.Server{Listener: ln, Handler: dns.HandlerFunc(answerLoopback)}
	go c.dnsSrv.ActivateAndServe()
	c.front = httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	c.front.Config.ErrorLog = log.New(io.Discard, "", 0)
	c.front.StartTLS()
	t.Cleanup(func() {
		close(c.hung)
		c.front.Close()
		c.dnsSrv.Shutdown()
	})
	return c
}

// answerLoopback answers A queries with 127.0.0.1 and everything else (AAAA, CAA)
// with no records: Pebble reaches every test domain on loopback, over IPv4 only.
func answerLoopback(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	for _, question := range q.Question {
		if question.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
				A:   net.IPv4(127, 0, 0, 1),
			})
		}
	}
	w.WriteMsg(m)
}

// Validate starts Pebble, validating HTTP-01 challenges on 127.0.0.1:httpPort and
// TLS-ALPN-01 on 127.0.0.1:tlsPort.
func (c *CA) Validate(httpPort, tlsPort int) {
	c.t.Helper()
	// Read by va.New and wfe.New: no random sleeps before validating, no nonces
	// refused on purpose (both slow a test down and test nothing of ours).
	for k, v := range map[string]string{"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"} {
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	logger := log.New(c.logFile, "pebble ", log.LstdFlags)
	store := db.NewMemoryStore()
	profile := ca.Profile{Description: "test", ValidityPeriod: uint64(c.opts.Validity / time.Second)}
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": profile})
	validator := va.New(logger, httpPort, tlsPort, false, c.dnsSrv.Listener.Addr().String(), store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	c.mu.Lock()
	c.pebble, c.ca = front.Handler(), authority
	c.mu.Unlock()
}

// Directory is the ACME directory URL.
func (c *CA) Directory() string { return c.front.URL + wfe.DirectoryPath }

// Roots trusts the CA's own HTTPS (certmagic's TrustedRoots).
func (c *CA) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(c.front.Certificate())
	return pool
}

// RootsPEM is Roots as PEM, for a process that trusts it through SSL_CERT_FILE.
func (c *CA) RootsPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.front.Certificate().Raw})
}

// IssuerRoots trusts what the CA issues: a client that checks a served certificate
// against it checks the whole chain.
func (c *CA) IssuerRoots() *x509.CertPool {
	c.mu.Lock()
	defer c.mu.Unlock()
	pool := x509.NewCertPool()
	pool.AddCert(c.ca.GetRootCert(0).Cert)
	return pool
}

// GetHTTPS asks the HTTPS listener at addr for https://host+path, the way a browser
// that trusts only this CA would (HTTP/2 if offered), and returns the answer (its
// TLS state says which certificate was served) and its body.
func (c *CA) GetHTTPS(addr, host, path string) (*http.Response, string, error) {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: host, RootCAs: c.IssuerRoots()},
		ForceAttemptHTTP2: true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + host + path)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, strings.TrimSpace(string(body)), err
}

// SetMode changes how the front answers from now on.
func (c *CA) SetMode(m Mode) {
	c.mu.Lock()
	c.mode = m
	c.mu.Unlock()
}

// Orders is how many new orders the CA was asked for (a certificate requested).
func (c *CA) Orders() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.orders
}

// WaitHeld waits until the CA holds a request (in Hang), or fails the test after d.
func (c *CA) WaitHeld(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-c.held:
	case <-time.After(d):
		t.Fatalf("no request reached the hanging CA within %s", d)
	}
}

func (c *CA) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	mode, pebble := c.mode, c.pebble
	if r.Method == http.MethodPost && r.URL.Path == "/order-plz" && mode == Up {
		c.orders++
	}
	c.mu.Unlock()
	switch {
	case mode == Down:
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
	case mode == Hang:
		select {
		case c.held <- struct{}{}:
		default:
		}
		select {
		case <-c.hung:
		case <-r.Context().Done():
		}
	case mode == Broken || pebble == nil:
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"type":"urn:ietf:params:acme:error:serverInternal","detail":"the test CA is broken on purpose","status":500}`)
	default:
		pebble.ServeHTTP(w, r)
	}
}
