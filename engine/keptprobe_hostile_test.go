package engine

import (
	"bufio"
	"context"
	"testing"
	"time"
)

// A lying server sends more than its answer: a second, unasked "200" right
// behind the first (or a moment later), and "500" to every request after.
// A probe must get the server's answer to itself, never the stale bytes of
// the one before: after the first probe, each says unhealthy.
func TestKeptProbeIgnoresUnaskedAnswers(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	const failing = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
	for name, extra := range map[string]func(w *bufio.Writer){
		"right behind": func(w *bufio.Writer) { w.WriteString(ok + ok) },
		"a moment later": func(w *bufio.Writer) {
			w.WriteString(ok)
			w.Flush()
			time.Sleep(50 * time.Millisecond)
			w.WriteString(ok)
		},
	} {
		t.Run(name, func(t *testing.T) {
			sent := make(chan struct{}) // the unasked bytes are in the probe's socket
			srv := newRawServer(t, func(w *bufio.Writer, n int) bool {
				if n == 0 {
					extra(w)
					w.Flush()
					close(sent)
				} else {
					w.WriteString(failing)
				}
				return false
			})
			p, err := newKeptProbe(srv.port(), "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if got := describe(p.probe(context.Background(), time.Second)); got != "healthy" {
				t.Fatalf("probe 1: %q, want healthy", got)
			}
			// The interval between probes: the late bytes are there by now.
			// (Bytes that come after the next request went out cannot be
			// told from its answer, by this probe or by net/http.)
			<-sent
			for i := 2; i <= 4; i++ {
				if got := describe(p.probe(context.Background(), time.Second)); got != "unhealthy: HTTP 500" {
					t.Fatalf("probe %d: %q, want the server's answer to it, unhealthy: HTTP 500", i, got)
				}
			}
		})
	}
}
