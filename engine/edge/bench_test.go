package edge

import (
	"bufio"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// How the benchmarks measure the router's cost, honestly on a shared 2-core machine:
//
//   - The backend runs in a child process (this test binary re-executed as a plain HTTP
//     server), so its CPU never shows in this process's rusage.
//   - The load generator runs in this process, BenchmarkEdge runs it twice with the same
//     request count and concurrency: straight at the backend (the direct pass), then
//     through the router served on a loopback listener (the edge pass).
//   - Process CPU (user+system, getrusage) per request is client CPU in the direct pass
//     and client + router CPU in the edge pass, so router CPU per request is the
//     difference. Garbage collection the router causes is counted in the router's share.
//   - Ratios against direct come from the two passes of the same run.

const backendHelperEnv = "EDGE_BENCH_BACKEND"

var benchClientsFlag = flag.Int("edge.clients", 32, "concurrent closed-loop clients in BenchmarkDirect and BenchmarkEdge")

// benchBody is what the benchmark backend answers: a small page, the worst case for a
// proxy's per-request overhead.
var benchBody = []byte(`<!doctype html><html><head><title>ok</title></head><body>` +
	`<p>Hello from the benchmark backend. This body is a few hundred bytes long, like a small JSON ` +
	`API answer or a health page.</p></body></html>` + "\n")

func TestMain(m *testing.M) {
	if os.Getenv(backendHelperEnv) == "1" {
		runBenchBackend()
		return
	}
	code := m.Run()
	stopBenchBackend()
	os.Exit(code)
}

// runBenchBackend is the child process: serve benchBody until stdin closes.
func runBenchBackend() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(1)
	}
	length := strconv.Itoa(len(benchBody))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"text/html; charset=utf-8"}
		h["Content-Length"] = []string{length}
		w.Write(benchBody)
	})}
	go srv.Serve(ln)
	os.Stdout.WriteString(ln.Addr().String() + "\n")
	io.Copy(io.Discard, os.Stdin) // the parent closes stdin (or dies): time to go
	srv.Close()
}

// benchBackends are the backend child processes, started on demand and kept for the
// whole test binary run; TestMain stops them.
var benchBackends struct {
	mu    sync.Mutex
	addrs []string
	cmds  []*exec.Cmd
	stdin []io.Closer
}

// startBenchBackend starts the backend child process once per test binary run.
func startBenchBackend(b *testing.B) string {
	return startBenchBackends(b, 1)[0]
}

// startBenchBackends returns n backends, each its own child process (replicas of one
// service on one host), starting those not running yet.
func startBenchBackends(b *testing.B, n int) []string {
	b.Helper()
	bb := &benchBackends
	bb.mu.Lock()
	defer bb.mu.Unlock()
	for len(bb.addrs) < n {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), backendHelperEnv+"=1")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		bb.cmds, bb.stdin = append(bb.cmds, cmd), append(bb.stdin, stdin)
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			b.Fatal(errors.Join(errors.New("benchmark backend did not start"), err))
		}
		bb.addrs = append(bb.addrs, line[:len(line)-1])
	}
	return slices.Clone(bb.addrs[:n])
}

func stopBenchBackend() {
	bb := &benchBackends
	for i, cmd := range bb.cmds {
		bb.stdin[i].Close()
		cmd.Wait()
	}
}

// loadResult is what the load generator measured over one or more passes.
type loadResult struct {
	requests int
	elapsed  time.Duration
	cpu      time.Duration   // this process's user+system CPU during the passes
	lat      []time.Duration // every request's latency
}

func (l *loadResult) add(m loadResult) {
	l.requests += m.requests
	l.elapsed += m.elapsed
	l.cpu += m.cpu
	l.lat = append(l.lat, m.lat...)
}

func (l loadResult) reqPerSec() float64 { return float64(l.requests) / l.elapsed.Seconds() }
func (l loadResult) cpuPerReq() float64 {
	return float64(l.cpu.Nanoseconds()) / 1e3 / float64(l.requests)
}
func (l loadResult) p99() time.Duration {
	slices.Sort(l.lat)
	return l.lat[len(l.lat)*99/100]
}

// loadGen sends GET requests to one base URL from closed-loop clients that keep their
// connections between passes.
type loadGen struct {
	base, host string
	// spread, if set, replaces base: client i sends to spread[i%len(spread)] (the
	// direct pass against several replicas).
	spread    []string
	method    string // GET if ""
	clients   int
	transport *http.Transport
	client    *http.Client
	// reconnectEvery > 0 gives each client a transport of its own that drops its
	// connection every so many requests (a TLS client then resumes its session).
	reconnectEvery int
}

func newLoadGen(b *testing.B, base, host string) *loadGen {
	return newLoadGenWith(b, base, host, &http.Transport{DisableCompression: true})
}

// newLoadGenWith is newLoadGen over tr (TLS settings, HTTP/2).
func newLoadGenWith(b *testing.B, base, host string, tr *http.Transport) *loadGen {
	clients := *benchClientsFlag
	tr.MaxIdleConnsPerHost = clients
	b.Cleanup(tr.CloseIdleConnections)
	return &loadGen{base: base, host: host, clients: clients, transport: tr, client: &http.Client{Transport: tr}}
}

// run sends n requests and measures throughput, latencies and process CPU.
func (g *loadGen) run(b *testing.B, n int) loadResult {
	b.Helper()
	var next atomic.Int64
	lat := make([][]time.Duration, g.clients)
	errs := make(chan error, g.clients)
	var wg sync.WaitGroup
	cpu0 := processCPU()
	start := time.Now()
	for w := range g.clients {
		wg.Go(func() {
			base := g.base
			if len(g.spread) > 0 {
				base = g.spread[w%len(g.spread)]
			}
			req, _ := http.NewRequest(cmp.Or(g.method, http.MethodGet), base+"/", nil)
			req.Host = g.host
			mine := make([]time.Duration, 0, n/g.clients+1)
			buf := make([]byte, 4096)
			client := g.client
			if g.reconnectEvery > 0 {
				tr := g.transport.Clone()
				defer tr.CloseIdleConnections()
				client = &http.Client{Transport: tr}
			}
			for i := 0; next.Add(1) <= int64(n); i++ {
				if g.reconnectEvery > 0 && i%g.reconnectEvery == 0 {
					client.Transport.(*http.Transport).CloseIdleConnections()
				}
				t0 := time.Now()
				res, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				for {
					if _, err := res.Body.Read(buf); err != nil {
						break
					}
				}
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					errs <- errors.New("status " + res.Status)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			lat[w] = mine
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return loadResult{requests: n, elapsed: elapsed, cpu: cpu, lat: slices.Concat(lat...)}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDirect is the baseline: the load generator straight at the backend.
func BenchmarkDirect(b *testing.B) {
	direct := newLoadGen(b, "http://"+startBenchBackend(b), "web.localhost")
	direct.run(b, 1000) // open the connections
	b.ResetTimer()
	d := direct.run(b, b.N)
	b.StopTimer()
	b.ReportMetric(d.reqPerSec(), "req/s")
	b.ReportMetric(float64(d.p99().Microseconds()), "p99-µs")
	b.ReportMetric(d.cpuPerReq(), "client-cpu-µs/req")
}

// BenchmarkEdge sends the load through the router and, alternating with it in chunks,
// the same load straight at the backend (see the comment at the top of this file).
func BenchmarkEdge(b *testing.B) {
	backend := startBenchBackend(b)
	r := New(Options{})
	r.SetRoute("web", []string{"web.localhost"}, backend)
	benchAgainstDirect(b, r, backend)
}

// BenchmarkEdgeReplicas is BenchmarkEdge with the service's requests balanced across
// 1, 2 and 4 backends (replicas on one host, each its own process); the direct pass
// spreads its clients across the same backends.
func BenchmarkEdgeReplicas(b *testing.B) {
	for _, n := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			backends := startBenchBackends(b, n)
			r := New(Options{})
			r.SetRoute("web", []string{"web.localhost"}, backends...)
			benchAgainstDirectWith(b, r, backends, http.MethodGet)
			var total uint64
			for _, backend := range backends {
				c := r.Responses(backend)
				if c[1] == 0 {
					b.Fatalf("backend %s of %d answered nothing", backend, n)
				}
				total += c[1]
			}
			b.ReportMetric(float64(r.Responses(backends[0])[1])/float64(total), "share-of-first")
		})
	}
}

// BenchmarkBareReverseProxy is the reference point: an untuned
// httputil.NewSingleHostReverseProxy with the default transport, measured the same way.
func BenchmarkBareReverseProxy(b *testing.B) {
	backend := startBenchBackend(b)
	benchAgainstDirect(b, httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: backend}), backend)
}

// BenchmarkEdgePost is BenchmarkEdge with POST (no body): what is not a plain GET or
// HEAD goes through http.Transport on a backend connection of its own each time (see
// newTarget), so it pays a loopback dial per request that GET does not.
func BenchmarkEdgePost(b *testing.B) {
	backend := startBenchBackend(b)
	r := New(Options{})
	r.SetRoute("web", []string{"web.localhost"}, backend)
	benchAgainstDirectWith(b, r, []string{backend}, http.MethodPost)
}

// benchAgainstDirect serves proxy on a loopback listener and sends b.N requests through
// it, alternating in chunks with b.N requests straight at backend, so that both see the
// same background load on a shared machine. The timer runs only during proxy chunks.
func benchAgainstDirect(b *testing.B, proxy http.Handler, backend string) {
	benchAgainstDirectWith(b, proxy, []string{backend}, http.MethodGet)
}

// benchAgainstDirectWith is benchAgainstDirect with requests of method, the direct
// pass spread across backends.
func benchAgainstDirectWith(b *testing.B, proxy http.Handler, backends []string, method string) {
	const chunk = 2000
	srv := httptest.NewServer(proxy)
	defer srv.Close()

	direct := newLoadGen(b, "", "web.localhost")
	for _, backend := range backends {
		direct.spread = append(direct.spread, "http://"+backend)
	}
	edge := newLoadGen(b, srv.URL, "web.localhost")
	direct.method, edge.method = method, method
	direct.run(b, 1000) // open the connections
	edge.run(b, 1000)
	b.ResetTimer()
	var d, e loadResult
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		b.StopTimer()
		d.add(direct.run(b, n))
		b.StartTimer()
		e.add(edge.run(b, n))
	}
	b.StopTimer()

	b.ReportMetric(e.reqPerSec(), "req/s")
	b.ReportMetric(float64(e.p99().Microseconds()), "p99-µs")
	b.ReportMetric(e.reqPerSec()/d.reqPerSec(), "x-direct-req/s")
	b.ReportMetric(float64(e.p99())/float64(d.p99()), "x-direct-p99")
	b.ReportMetric(e.cpuPerReq()-d.cpuPerReq(), "proxy-cpu-µs/req")
}

// BenchmarkSwitch measures how long after SetRoute returns the new backend serves: each
// op switches the service to the other backend and times one request until its answer
// arrives from the new backend. The backend switched away from is idle, so the router
// forgets it and closes its connections: each switch pays a fresh dial, as a real
// deploy to a new container does. steady-µs is the same request with no switch.
func BenchmarkSwitch(b *testing.B) {
	var names [2]string
	var addrs [2]string
	for i, name := range []string{"blue", "green"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, name)
		}))
		defer srv.Close()
		names[i], addrs[i] = name, srv.Listener.Addr().String()
	}
	r := New(Options{})
	r.SetRoute("web", []string{"web.localhost"}, addrs[0])
	router := httptest.NewServer(r)
	defer router.Close()
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, router.URL+"/", nil)
	req.Host = "web.localhost"
	fetch := func() string {
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return string(body)
	}
	fetch()

	switches := make([]time.Duration, 0, b.N)
	var steady time.Duration
	b.ResetTimer()
	for i := range b.N {
		to := (i + 1) % 2
		r.SetRoute("web", []string{"web.localhost"}, addrs[to])
		t0 := time.Now()
		got := fetch()
		switches = append(switches, time.Since(t0))
		if got != names[to] {
			b.Fatalf("first request after the switch to %s answered by %s", names[to], got)
		}
		t1 := time.Now()
		fetch()
		steady += time.Since(t1)
	}
	b.StopTimer()
	slices.Sort(switches)
	var sum time.Duration
	for _, d := range switches {
		sum += d
	}
	b.ReportMetric(float64(sum.Microseconds())/float64(b.N), "switch-µs")
	b.ReportMetric(float64(switches[len(switches)/2].Microseconds()), "switch-p50-µs")
	b.ReportMetric(float64(switches[len(switches)*99/100].Microseconds()), "switch-p99-µs")
	b.ReportMetric(float64(steady.Microseconds())/float64(b.N), "steady-µs")
}

// BenchmarkEdgeTLS measures the router over HTTPS against the same router over plain
// HTTP, in the same run: the passes alternate in chunks, as in BenchmarkEdge. The
// HTTPS variants are HTTP/1.1 on keep-alive connections, HTTP/2 (every client
// multiplexed on one connection, as http.Transport does), and HTTP/1.1 with each
// client reconnecting every 20 requests and resuming its TLS session (a ticket), as
// returning browsers do. The certificate is ECDSA P-256, certmagic's default key.
//
// Clients and router share this process, so TLS costs show twice in cpu-µs/req: the
// client's encryption and the router's. The extra CPU over plain HTTP is an upper
// bound on the router's, about twice its share.
func BenchmarkEdgeTLS(b *testing.B) {
	const chunk, host = 2000, "web.localhost"
	backend := startBenchBackend(b)
	r := New(Options{})
	r.SetRoute("web", []string{host}, backend)
	plain := httptest.NewServer(r)
	defer plain.Close()
	cert, roots := benchCertificate(b, host)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := NewServer(r, ServerOptions{})
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	base := "https://" + ln.Addr().String()

	var handshakes, resumed atomic.Int64
	clientTLS := func() *tls.Config {
		return &tls.Config{
			ServerName: host, RootCAs: roots, ClientSessionCache: tls.NewLRUClientSessionCache(256),
			VerifyConnection: func(cs tls.ConnectionState) error {
				handshakes.Add(1)
				if cs.DidResume {
					resumed.Add(1)
				}
				return nil
			},
		}
	}
	h1 := newLoadGenWith(b, base, host, &http.Transport{DisableCompression: true, TLSClientConfig: clientTLS()})
	h2 := newLoadGenWith(b, base, host, &http.Transport{DisableCompression: true, TLSClientConfig: clientTLS(), ForceAttemptHTTP2: true})
	resume := newLoadGenWith(b, base, host, &http.Transport{DisableCompression: true, TLSClientConfig: clientTLS()})
	resume.reconnectEvery = 20
	passes := []struct {
		name string
		gen  *loadGen
	}{
		{"http", newLoadGen(b, plain.URL, host)},
		{"https-h1", h1},
		{"https-h2", h2},
		{"https-h1-resumed", resume},
	}
	for _, p := range passes {
		p.gen.run(b, 1000) // open the connections
	}
	handshakes.Store(0)
	resumed.Store(0)
	b.ResetTimer()
	results := make([]loadResult, len(passes))
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		for i, p := range passes {
			results[i].add(p.gen.run(b, n))
		}
	}
	b.StopTimer()
	http0 := results[0]
	for i, p := range passes {
		res := results[i]
		b.ReportMetric(res.reqPerSec(), p.name+"-req/s")
		b.ReportMetric(res.cpuPerReq(), p.name+"-cpu-µs/req")
		if i > 0 {
			b.ReportMetric(res.reqPerSec()/http0.reqPerSec(), p.name+"-x-http-req/s")
			b.ReportMetric(res.cpuPerReq()/http0.cpuPerReq(), p.name+"-x-http-cpu")
		}
	}
	if h := handshakes.Load(); h > 0 {
		b.ReportMetric(100*float64(resumed.Load())/float64(h), "resumed-%")
	}
	if h2res, err := h2.client.Get(base + "/"); err == nil {
		h2res.Body.Close()
		if h2res.ProtoMajor != 2 {
			b.Fatalf("the HTTP/2 pass spoke %s", h2res.Proto)
		}
	}
}

// benchCertificate makes a self-signed ECDSA P-256 certificate for host and the pool
// that trusts it.
func benchCertificate(b testing.TB, host string) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
