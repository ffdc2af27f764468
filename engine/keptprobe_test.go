package engine

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawServer answers each request on 127.0.0.1 with what answer writes: the
// same bytes to every client, whatever its HTTP library. answer gets the
// request's number (from 0, over all connections); close after it ends the
// connection.
type rawServer struct {
	ln     net.Listener
	answer func(w *bufio.Writer, n int) (close bool)
	mu     sync.Mutex
	agents []string // the User-Agent of each request
	conns  int      // connections accepted
}

func newRawServer(t *testing.T, answer func(w *bufio.Writer, n int) bool) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{ln: ln, answer: answer}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			go s.serve(c)
		}
	}()
	return s
}

func (s *rawServer) serve(c net.Conn) {
	defer c.Close()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		s.mu.Lock()
		n := len(s.agents)
		s.agents = append(s.agents, req.UserAgent()+" "+req.Method+" "+req.URL.Path+" "+req.Host)
		s.mu.Unlock()
		closeAfter := s.answer(bw, n)
		bw.Flush()
		if closeAfter {
			return
		}
	}
}

func (s *rawServer) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// answers: each raw answer in turn (the last one again after them), each
// on a connection kept open.
func answers(raw ...string) func(*bufio.Writer, int) bool {
	return func(w *bufio.Writer, n int) bool {
		w.WriteString(raw[min(n, len(raw)-1)])
		return false
	}
}

// describe is a probe's result as the supervision records it.
func describe(err error) string {
	if err == nil {
		return "healthy"
	}
	return oneLine(err.Error())
}

// The kept probe answers as probeWith through an http.Client (the
// supervision's before it) on the same servers, probe after probe on the
// same connection: the same health, the same reason.
func TestKeptProbeAnswersAsNetHTTP(t *testing.T) {
	// The cases about the timeout have a short one; the others a long one, so
	// that a stall of the loaded machine is not taken for no answer.
	const short, answered = 300 * time.Millisecond, 10 * time.Second
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	cases := []struct {
		name   string
		answer func(*bufio.Writer, int) bool
		want   []string // each probe's result, in turn
	}{
		{"200 with a body", answers(ok), []string{"healthy", "healthy", "healthy"}},
		{"204", answers("HTTP/1.1 204 No Content\r\n\r\n"), []string{"healthy", "healthy"}},
		{"a redirect is not followed", answers("HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n"), []string{"healthy", "healthy"}},
		{"500", answers("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"), []string{"unhealthy: HTTP 500", "unhealthy: HTTP 500"}},
		{"404 then 200", answers("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", ok), []string{"unhealthy: HTTP 404", "healthy", "healthy"}},
		{"chunked", answers("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"), []string{"healthy", "healthy", "healthy"}},
		{"chunked 503", answers("HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbusy\r\n0\r\n\r\n"), []string{"unhealthy: HTTP 503", "unhealthy: HTTP 503"}},
		{"Connection: close", func(w *bufio.Writer, n int) bool {
			w.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
			return true
		}, []string{"healthy", "healthy", "healthy"}},
		{"HTTP/1.0 until the end of the connection", func(w *bufio.Writer, n int) bool {
			w.WriteString("HTTP/1.0 200 OK\r\n\r\nall of it")
			return true
		}, []string{"healthy", "healthy"}},
		{"a body longer than what is read", answers("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 100000)), []string{"healthy", "healthy", "healthy"}},
		{"an early hint first", answers("HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + ok), []string{"healthy", "healthy"}},
		{"the server closes the kept connection after each answer, unsaid", func(w *bufio.Writer, n int) bool {
			w.WriteString(ok)
			return true
		}, []string{"healthy", "healthy", "healthy"}},
		{"a body cut off", func(w *bufio.Writer, n int) bool {
			w.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
			return true
		}, []string{"healthy", "healthy"}},
		{"a body without end", func(w *bufio.Writer, n int) bool {
			w.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			for {
				if _, err := w.WriteString("400\r\n" + strings.Repeat("x", 0x400) + "\r\n"); err != nil {
					return true
				}
				if err := w.Flush(); err != nil {
					return true
				}
			}
		}, []string{"healthy", "healthy"}},
		{"headers without end", func(w *bufio.Writer, n int) bool {
			w.WriteString("HTTP/1.1 200 OK\r\n")
			line := "X-Filler: " + strings.Repeat("x", 1000) + "\r\n"
			for range (maxAnswerHead / len(line)) + 100 {
				if _, err := w.WriteString(line); err != nil {
					break
				}
			}
			return true
		}, nil},
		{"closed with no answer", func(w *bufio.Writer, n int) bool { return true }, nil},
		{"not HTTP", answers("hello there\r\n\r\n"), nil},
		{"a bad status", answers("HTTP/1.1 2000 OK\r\n\r\n"), nil},
		{"no answer", func(w *bufio.Writer, n int) bool {
			time.Sleep(3 * short)
			return true
		}, []string{"no answer within 300ms", "no answer within 300ms"}},
		{"an answer after the timeout, then in time", func(w *bufio.Writer, n int) bool {
			if n == 0 {
				time.Sleep(2 * short)
			}
			w.WriteString(ok)
			return false
		}, []string{"no answer within 300ms", "healthy", "healthy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			viaHTTP, viaKept := newRawServer(t, tc.answer), newRawServer(t, tc.answer)
			client := newKeepAliveProbeClient()
			defer client.CloseIdleConnections()
			kept, err := newKeptProbe(viaKept.port(), "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			defer kept.Close()
			probes := max(len(tc.want), 2)
			timeout := answered
			switch {
			case tc.want != nil && strings.HasPrefix(tc.want[0], "no answer within"): // about the timeout
				timeout = short
			case tc.name == "headers without end":
				timeout = 20 * time.Second // 10 MiB in time, under load and -race
			}
			for i := range probes {
				start := time.Now()
				want := describe(probeWith(context.Background(), client, fmt.Sprintf("http://127.0.0.1:%d/healthz", viaHTTP.port()), timeout))
				tookHTTP := time.Since(start)
				start = time.Now()
				got := describe(kept.probe(context.Background(), timeout))
				took := time.Since(start)
				if got != want {
					t.Fatalf("probe %d: kept %q, net/http %q", i+1, got, want)
				}
				if took >= timeout && tookHTTP < timeout {
					t.Fatalf("probe %d: kept took %s, to the timeout; net/http %s", i+1, took, tookHTTP)
				}
				t.Logf("probe %d: %s", i+1, got)
				if tc.want != nil && got != tc.want[i] {
					t.Fatalf("probe %d: %q, want %q", i+1, got, tc.want[i])
				}
				if tc.want == nil && got == "healthy" {
					t.Fatalf("probe %d: healthy", i+1)
				}
			}
			// The same requests, and connections kept as the Transport
			// keeps them.
			viaHTTP.mu.Lock()
			viaKept.mu.Lock()
			defer viaHTTP.mu.Unlock()
			defer viaKept.mu.Unlock()
			if len(viaKept.agents) != len(viaHTTP.agents) || viaKept.conns != viaHTTP.conns {
				t.Fatalf("kept: %d requests on %d connections, net/http: %d on %d", len(viaKept.agents), viaKept.conns, len(viaHTTP.agents), viaHTTP.conns)
			}
			for i, a := range viaKept.agents {
				want := strings.Replace(viaHTTP.agents[i], fmt.Sprint(viaHTTP.port()), fmt.Sprint(viaKept.port()), 1)
				if a != want {
					t.Fatalf("request %d: kept %q, net/http %q", i+1, a, want)
				}
			}
		})
	}
}

// A port nothing listens on: the same reason as net/http's.
func TestKeptProbeRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	kept, err := newKeptProbe(port, "/")
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	want := describe(probeWith(context.Background(), newKeepAliveProbeClient(), fmt.Sprintf("http://127.0.0.1:%d/", port), time.Second))
	got := describe(kept.probe(context.Background(), time.Second))
	if got != want || !strings.Contains(got, "refused") {
		t.Fatalf("kept %q, net/http %q", got, want)
	}
}

// A probe that waits for an answer ends with its context (the supervision
// ended), long before its timeout.
func TestKeptProbeEndsWithItsContext(t *testing.T) {
	s := newRawServer(t, func(w *bufio.Writer, n int) bool {
		time.Sleep(10 * time.Second)
		return true
	})
	kept, err := newKeptProbe(s.port(), "/")
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	if err := kept.probe(ctx, 10*time.Second); err != context.Canceled {
		t.Fatalf("probe: %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("the probe ended %s after it began, its context after 100ms", took)
	}
}
