package engine_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// TestStreamsAcrossACutover: through the edge router to real containers, an
// SSE stream arrives unbuffered, and a WebSocket opened on blue keeps working
// after the switch to green until the drain timeout closes it.
func TestStreamsAcrossACutover(t *testing.T) {
	// The drain timeout leaves the echo after the switch room on a loaded machine.
	h := newHarness(t, func(o *engine.Options) { o.DrainTimeout = 6 * time.Second })
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	v2 := testdocker.SampleImage(t, h.rt, "v2")
	h.service("web", v1, nil)
	h.act(deploy("web"))

	// SSE: the first event arrives long before the second is even written.
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.addr+"/sse?n=2&ms=10000", nil)
	req.Host = "web.localhost"
	start := time.Now()
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sse := bufio.NewReader(resp.Body)
	sse.ReadString('\n') // id: 1
	first, err := sse.ReadString('\n')
	if err != nil || first != "data: event 1 of 2 from v1\n" {
		t.Fatalf("first SSE data line %q, %v", first, err)
	}
	if took := time.Since(start); took > 5*time.Second { // buffered, it would take 10 s
		t.Fatalf("the first event took %s: the stream was buffered", took)
	}
	resp.Body.Close()

	// A WebSocket on blue.
	conn, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: web.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	br := bufio.NewReader(conn)
	up, err := http.ReadResponse(br, nil)
	if err != nil || up.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", up, err)
	}
	echo := func(msg string) error {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(conn, msg); err != nil {
			return err
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil {
			return err
		}
		if string(buf) != msg {
			return fmt.Errorf("echo %q, want %q", buf, msg)
		}
		return nil
	}
	if err := echo("before"); err != nil {
		t.Fatal(err)
	}

	// Cut over to green: new requests go there, the socket stays on blue.
	cutover := time.Now()
	d2 := h.act(engine.Request{Kind: store.KindDeploy, Service: "web", Image: v2})
	if d2.Status != store.StatusActive {
		t.Fatalf("#2: %s %s", d2.Status, d2.FailureReason)
	}
	if body := h.mustGet("web", "/"); body != "hello from v2" {
		t.Fatalf("after the switch: %q", body)
	}
	if err := echo("after the switch"); err != nil {
		t.Fatalf("the WebSocket was cut at the switch: %v", err)
	}
	// The drain timeout (6 s) ends it.
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	_, err = io.Copy(io.Discard, br)
	if err != nil && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("waiting for the drain to close the socket: %v", err)
	}
	if open := time.Since(cutover); open < 5*time.Second || open > 25*time.Second {
		t.Fatalf("the socket closed %s after the cutover; the drain timeout is 6 s", open)
	}
}
