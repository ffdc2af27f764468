package edge

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The cross-talk suite: backends that lie about HTTP framing, behind Clank's router
// and behind httputil.ReverseProxy with http.Transport (the library the router's
// plain path replaces), many clients at once. Every request carries a nonce, the
// backend's honest answers echo it, and no client may ever receive another client's
// nonce: the one thing a keep-alive pool must never do is hand one user the answer
// to another's request.

// junkResponse is a whole response glued where none belongs. A proxy that takes it
// for the answer to the next request on the connection is one answer behind from
// then on: each client gets the previous client's answer.
const junkResponse = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Junk: 1\r\n\r\ninjected"

// nonceRE finds the nonces of the suite's requests in whatever a client received.
var nonceRE = regexp.MustCompile(`n[0-9a-f]{16}`)

func newNonce() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "n" + hex.EncodeToString(b)
}

// reply is a hostile backend's answer to one request on a connection: the bytes to
// write (in one write), and whether to close the connection afterwards.
type reply func(req *http.Request, nonce string) (out string, closeAfter bool)

// honest answers as a well-behaved server would: the nonce in a header and the body
// (no body for HEAD).
func honest(req *http.Request, nonce string) string {
	body := "req:" + nonce
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nX-Req: %s\r\nContent-Length: %d\r\n\r\n", nonce, len(body))
	if req.Method == http.MethodHead {
		return head
	}
	return head + body
}

func chunked(nonce string, trailer bool) string {
	body := "req:" + nonce
	s := "HTTP/1.1 200 OK\r\nX-Req: " + nonce + "\r\nTransfer-Encoding: chunked\r\n"
	if trailer {
		s += "Trailer: X-Trailer\r\n"
	}
	s += fmt.Sprintf("\r\n%x\r\n%s\r\n0\r\n", len(body), body)
	if trailer {
		s += "X-Trailer: " + nonce + "\r\n"
	}
	return s + "\r\n"
}

// hostileBackends are the backends of the suite, by what they do wrong.
var hostileBackends = []struct {
	name string
	// reply answers each request; idleJunk, if set, is written whenever the
	// connection has been idle for 20 ms after an answer: a response with no request
	// outstanding.
	reply    reply
	idleJunk bool
	// honest: every client must get its own answer, through both proxies.
	honest bool
}{
	{name: "body on HEAD", reply: func(req *http.Request, n string) (string, bool) {
		if req.Method == http.MethodHead {
			return honest(req, n) + "req:" + n + junkResponse, false
		}
		return honest(req, n), false
	}},
	{name: "body on 204", reply: func(req *http.Request, n string) (string, bool) {
		if strings.HasSuffix(req.URL.Path, "/odd") {
			return "HTTP/1.1 204 No Content\r\nX-Req: " + n + "\r\n\r\n" + junkResponse, false
		}
		return honest(req, n), false
	}},
	{name: "body on 304", reply: func(req *http.Request, n string) (string, bool) {
		if strings.HasSuffix(req.URL.Path, "/odd") {
			return "HTTP/1.1 304 Not Modified\r\nX-Req: " + n + "\r\nContent-Length: 8\r\n\r\n" + junkResponse, false
		}
		return honest(req, n), false
	}},
	{name: "more bytes than Content-Length", reply: func(req *http.Request, n string) (string, bool) {
		if req.Method == http.MethodHead {
			return honest(req, n), false
		}
		return honest(req, n) + junkResponse, false
	}},
	{name: "fewer bytes than Content-Length, then close", reply: func(req *http.Request, n string) (string, bool) {
		if strings.HasSuffix(req.URL.Path, "/odd") && req.Method == http.MethodGet {
			return "HTTP/1.1 200 OK\r\nX-Req: " + n + "\r\nContent-Length: 200\r\n\r\nreq:" + n, true
		}
		return honest(req, n), false
	}},
	{name: "two Content-Lengths", reply: func(req *http.Request, n string) (string, bool) {
		body := "req:" + n
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nX-Req: %s\r\nContent-Length: %d\r\nContent-Length: %d\r\n\r\n%s%s",
			n, len(body), len(body)+len(junkResponse), body, junkResponse), false
	}},
	{name: "Transfer-Encoding with Content-Length", reply: func(req *http.Request, n string) (string, bool) {
		if req.Method == http.MethodHead {
			return honest(req, n), false
		}
		return strings.Replace(chunked(n, false), "Transfer-Encoding", "Content-Length: 3\r\nTransfer-Encoding", 1), false
	}, honest: true},
	{name: "chunked with trailers", reply: func(req *http.Request, n string) (string, bool) {
		if req.Method == http.MethodHead {
			return honest(req, n), false
		}
		return chunked(n, true), false
	}, honest: true},
	{name: "chunked with a response after the last chunk", reply: func(req *http.Request, n string) (string, bool) {
		if req.Method == http.MethodHead {
			return honest(req, n), false
		}
		return chunked(n, false) + junkResponse, false
	}},
	{name: "1xx before the answer", reply: func(req *http.Request, n string) (string, bool) {
		return "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" + honest(req, n), false
	}, honest: true},
	{name: "close mid-body", reply: func(req *http.Request, n string) (string, bool) {
		if strings.HasSuffix(req.URL.Path, "/odd") && req.Method == http.MethodGet {
			return "HTTP/1.1 200 OK\r\nX-Req: " + n + "\r\nContent-Length: 64\r\n\r\nreq:", true
		}
		return honest(req, n), false
	}},
	{name: "Connection: close on a keep-alive", reply: func(req *http.Request, n string) (string, bool) {
		return strings.Replace(honest(req, n), "\r\n\r\n", "\r\nConnection: close\r\n\r\n", 1), false
	}, honest: true},
	// The backend sends a response on a connection nobody asked anything on. The
	// clients go in rounds, and each round waits until every connection has sent
	// its response while idle: the router must find it before it writes a request.
	// (A response sent at the very moment the next request is written cannot be told
	// from the answer to it by any HTTP/1.1 client; the router stops reusing a
	// backend's connections from the first stray response it sees.)
	{name: "a response with no request outstanding", reply: func(req *http.Request, n string) (string, bool) {
		return honest(req, n), false
	}, idleJunk: true},
	{name: "slow headers", reply: func(req *http.Request, n string) (string, bool) {
		// One odd request in 16 (by its random nonce): enough slow answers to
		// time out and abandon connections, without a second per client in turn.
		if strings.HasSuffix(req.URL.Path, "/odd") && strings.HasSuffix(n, "0") {
			time.Sleep(crossTalkHeaderTimeout + 50*time.Millisecond)
		}
		return honest(req, n), false
	}},
}

// crossTalkHeaderTimeout is both proxies' response header timeout in the
// suite: long enough that an honest backend on a loaded machine under -race
// always answers in time, so only the slow-headers backend meets it.
const crossTalkHeaderTimeout = time.Second

// hostileBackend is a running hostile backend.
type hostileBackend struct {
	addr string
	// idle counts the connections inside their idle window (idleJunk): answered, and
	// neither asked again nor sent their unsolicited response yet.
	idle atomic.Int64
}

// startHostileBackend serves rep on a loopback listener: it reads each request,
// takes the nonce from the path's first segment, and writes rep's bytes as they are.
func startHostileBackend(t testing.TB, rep reply, idleJunk bool) *hostileBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hb := &hostileBackend{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				hb.serve(c, rep, idleJunk)
			})
		}
	})
	return hb
}

func (hb *hostileBackend) serve(c net.Conn, rep reply, idleJunk bool) {
	br := bufio.NewReader(c)
	for {
		if idleJunk {
			hb.idle.Add(1)
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			_, err := br.Peek(1)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				_, err = io.WriteString(c, junkResponse)
			}
			hb.idle.Add(-1)
			if err != nil {
				return
			}
			c.SetReadDeadline(time.Time{})
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		nonce := strings.Split(strings.TrimPrefix(req.URL.Path, "/"), "/")[0]
		out, closeAfter := rep(req, nonce)
		if _, err := io.WriteString(c, out); err != nil || closeAfter {
			return
		}
	}
}

// settled waits until every connection of an idleJunk backend has sent its
// unsolicited response: from then on, each one waits in the proxy's pool with a
// response that answers no request.
func (hb *hostileBackend) settled(t testing.TB) {
	deadline := time.Now().Add(10 * time.Second)
	for hb.idle.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d backend connections still inside their idle window after 10 s", hb.idle.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// proxyUnderTest is a proxy in front of one backend address, and how its clients
// connect to it.
type proxyUnderTest struct {
	name  string
	ours  bool // Clank's router: it must hold the invariant
	start func(t testing.TB, backend string) (url string, transport func() *http.Transport)
}

func plainClients() *http.Transport {
	return &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}
}

func startClankRouter(t testing.TB, backend string) *Router {
	r := New(Options{ResponseHeaderTimeout: crossTalkHeaderTimeout})
	r.SetRoute("svc", []string{"svc.test"}, backend)
	return r
}

var proxiesUnderTest = []proxyUnderTest{
	{"clank router", true, func(t testing.TB, backend string) (string, func() *http.Transport) {
		srv := httptest.NewServer(startClankRouter(t, backend))
		t.Cleanup(srv.Close)
		return srv.URL, plainClients
	}},
	// Over HTTP/2 a GET's body is the stream's, not http.NoBody: the router still
	// takes its plain path, on the same pooled backend connections.
	{"clank router, clients on HTTP/2", true, func(t testing.TB, backend string) (string, func() *http.Transport) {
		srv := httptest.NewUnstartedServer(startClankRouter(t, backend))
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		return srv.URL, func() *http.Transport {
			tr := srv.Client().Transport.(*http.Transport).Clone()
			tr.ForceAttemptHTTP2, tr.DisableCompression = true, true
			return tr
		}
	}},
	{"httputil.ReverseProxy", false, func(t testing.TB, backend string) (string, func() *http.Transport) {
		u, _ := url.Parse("http://" + backend)
		rp := httputil.NewSingleHostReverseProxy(u)
		tr := &http.Transport{ResponseHeaderTimeout: crossTalkHeaderTimeout, MaxIdleConnsPerHost: 512}
		rp.Transport = tr
		rp.ErrorLog = log.New(io.Discard, "", 0)
		srv := httptest.NewServer(rp)
		t.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
		return srv.URL, plainClients
	}},
}

// crossTalkResult counts what the clients of one run received.
type crossTalkResult struct {
	own, other, errors int
	leaks              []string // what a client got that was another's
}

func (r *crossTalkResult) add(o crossTalkResult) {
	r.own, r.other, r.errors = r.own+o.own, r.other+o.other, r.errors+o.errors
	r.leaks = append(r.leaks, o.leaks...)
}

// runClients sends clients×perClient requests through the proxy at base, mixed GET,
// HEAD and POST, every fourth to the backend's odd path, and checks each answer for
// nonces that are not the request's own. With between set, the clients go in rounds
// of one request each, and between runs after every round.
func runClients(t testing.TB, base string, transport func() *http.Transport, clients, perClient int, between func()) crossTalkResult {
	t.Helper()
	var mu sync.Mutex
	var res crossTalkResult
	send := func(hc *http.Client, c, i int) {
		nonce := newNonce()
		path := "/" + nonce
		if i%4 == 3 {
			path += "/odd"
		}
		method := [...]string{http.MethodGet, http.MethodGet, http.MethodHead, http.MethodPost}[(c+i)%4]
		got, err := crossTalkRequest(hc, method, base+path)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			res.errors++
		case strings.Contains(got, nonce) && len(nonceRE.FindAllString(got, -1)) == strings.Count(got, nonce):
			res.own++
		}
		for _, seen := range nonceRE.FindAllString(got, -1) {
			if seen != nonce {
				res.other++
				res.leaks = append(res.leaks, fmt.Sprintf("%s %s got %s", method, path, seen))
			}
		}
	}
	hcs := make([]*http.Client, clients)
	for c := range hcs {
		tr := transport()
		defer tr.CloseIdleConnections()
		hcs[c] = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	}
	var wg sync.WaitGroup
	if between == nil {
		for c, hc := range hcs {
			wg.Go(func() {
				for i := range perClient {
					send(hc, c, i)
				}
			})
		}
		wg.Wait()
		return res
	}
	for i := range perClient {
		for c, hc := range hcs {
			wg.Go(func() { send(hc, c, i) })
		}
		wg.Wait()
		between()
	}
	return res
}

// crossTalkRequest returns everything the client received: status, headers, body
// (what arrived of it before an error).
func crossTalkRequest(hc *http.Client, method, u string) (string, error) {
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("a request body")
	}
	req, err := http.NewRequestWithContext(context.Background(), method, u, body)
	if err != nil {
		return "", err
	}
	req.Host = "svc.test"
	res, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "%d ", res.StatusCode)
	for k, vv := range res.Header {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(vv, ","))
	}
	_, err = io.Copy(&b, res.Body)
	for k, vv := range res.Trailer {
		fmt.Fprintf(&b, "\n%s: %s", k, strings.Join(vv, ","))
	}
	return b.String(), err
}

func TestNoCrossTalkWithHostileBackends(t *testing.T) {
	const clients, perClient = 16, 24
	// http.Transport reports the unsolicited answers it drops on the global logger.
	log.SetOutput(io.Discard)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	for _, hb := range hostileBackends {
		t.Run(hb.name, func(t *testing.T) {
			for _, p := range proxiesUnderTest {
				// A stray response caught once ends keep-alive to its backend: the
				// rounds of an idle-junk backend run three times afresh, so that a
				// router that missed it would be caught.
				runs, n := 1, perClient
				if hb.idleJunk {
					runs, n = 3, perClient/2
				}
				var res crossTalkResult
				for range runs {
					backend := startHostileBackend(t, hb.reply, hb.idleJunk)
					base, transport := p.start(t, backend.addr)
					var between func()
					if hb.idleJunk {
						between = func() { backend.settled(t) }
					}
					res.add(runClients(t, base, transport, clients, n, between))
				}
				t.Logf("%s: %d own answers, %d errors, %d of another client's", p.name, res.own, res.errors, res.other)
				if p.ours && res.other > 0 {
					t.Errorf("%s: %d answers reached the wrong client, e.g. %v", p.name, res.other, res.leaks[:min(3, len(res.leaks))])
				}
				if hb.honest && res.own != runs*clients*n {
					t.Errorf("%s: a backend that only bends the rules: %d of %d clients got their own answer (%d errors)",
						p.name, res.own, runs*clients*n, res.errors)
				}
			}
		})
	}
}

// TestHeadWithBodyDoesNotPoisonThePool is the reproduction, in order: a HEAD
// answered with a whole extra response glued on, then two clients in turn on the
// same (single) backend connection.
func TestHeadWithBodyDoesNotPoisonThePool(t *testing.T) {
	backend := startHostileBackend(t, hostileBackends[0].reply, false)
	base, _ := proxiesUnderTest[0].start(t, backend.addr)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	for _, method := range []string{http.MethodHead, http.MethodGet, http.MethodGet, http.MethodGet} {
		nonce := newNonce()
		got, err := crossTalkRequest(hc, method, base+"/"+nonce)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if !strings.HasPrefix(got, "200 ") || !strings.Contains(got, nonce) || strings.Contains(got, "injected") {
			t.Fatalf("%s /%s got another answer:\n%s", method, nonce, got)
		}
	}
}

// FuzzBackendBytes sends whatever bytes the fuzzer makes as a backend's answer to a
// first request, then three more requests in turn through the router (HEAD, GET,
// GET) to the same backend, which answers those honestly. Whatever the first answer
// was, no later client may receive another's nonce.
func FuzzBackendBytes(f *testing.F) {
	for _, hb := range hostileBackends {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			req := &http.Request{Method: method, URL: &url.URL{Path: "/nfeedfacefeedface/odd"}}
			out, _ := hb.reply(req, "nfeedfacefeedface")
			f.Add([]byte(out), method == http.MethodHead)
		}
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nrest"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabcHTTP/1.1 204 OK\r\n\r\n"), true)

	f.Fuzz(func(t *testing.T, first []byte, head bool) {
		var once sync.Once
		rep := func(req *http.Request, nonce string) (string, bool) {
			out := ""
			once.Do(func() { out = string(first) })
			if out != "" {
				return out, false // and the connection stays open, for the next request
			}
			return honest(req, nonce), false
		}
		backend := startHostileBackend(t, rep, false).addr
		r := New(Options{ResponseHeaderTimeout: 50 * time.Millisecond, IdleConnTimeout: time.Minute})
		r.SetRoute("svc", []string{"svc.test"}, backend)
		srv := httptest.NewServer(r)
		defer srv.Close()
		hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}

		method := http.MethodGet
		if head {
			method = http.MethodHead
		}
		// Anything goes for the first answer; a client that waits for more than the
		// bytes hold gives up soon.
		impatient := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 100 * time.Millisecond}
		crossTalkRequest(impatient, method, srv.URL+"/"+newNonce())
		for _, method := range []string{http.MethodHead, http.MethodGet, http.MethodGet} {
			nonce := newNonce()
			got, _ := crossTalkRequest(hc, method, srv.URL+"/"+nonce)
			for _, seen := range nonceRE.FindAllString(got, -1) {
				if seen != nonce {
					t.Fatalf("%s /%s received %s, another request's nonce:\n%s", method, nonce, seen, got)
				}
			}
		}
	})
}
