package sampleapp

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func testConfig(env map[string]string) config {
	return config{
		version: "v7",
		started: time.Now(),
		lookupEnv: func(k string) (string, bool) {
			v, ok := env[k]
			return v, ok
		},
	}
}

func get(t *testing.T, h http.Handler, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
	return rec
}

func TestEndpoints(t *testing.T) {
	h := newHandler(testConfig(map[string]string{"GREETING": "hi there", "EMPTY": ""}))
	tests := []struct {
		target string
		code   int
		body   string
	}{
		{"/", 200, "hello from v7\n"},
		{"/healthz", 200, "ok\n"},
		{"/env/GREETING", 200, "hi there"},
		{"/env/EMPTY", 200, ""},
		{"/env/MISSING", 404, "not set\n"},
		{"/slow?ms=30", 200, "hello from v7\n"},
		{"/slow?ms=abc", 400, ""},
		{"/nope", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			rec := get(t, h, tt.target)
			if rec.Code != tt.code {
				t.Fatalf("GET %s = %d %q, want %d", tt.target, rec.Code, rec.Body, tt.code)
			}
			if tt.body != "" && rec.Body.String() != tt.body {
				t.Errorf("GET %s body = %q, want %q", tt.target, rec.Body, tt.body)
			}
			if got := rec.Header().Get("X-App-Version"); got != "v7" {
				t.Errorf("X-App-Version = %q, want v7", got)
			}
		})
	}
}

func TestSlowWaits(t *testing.T) {
	h := newHandler(testConfig(nil))
	start := time.Now()
	if rec := get(t, h, "/slow?ms=120"); rec.Code != 200 {
		t.Fatalf("GET /slow = %d", rec.Code)
	}
	if d := time.Since(start); d < 120*time.Millisecond {
		t.Errorf("/slow?ms=120 answered after %s", d)
	}
}

func TestHealth(t *testing.T) {
	failing := testConfig(nil)
	failing.healthFail = true
	if rec := get(t, newHandler(failing), "/healthz"); rec.Code != http.StatusInternalServerError {
		t.Errorf("HEALTH=fail: /healthz = %d, want 500", rec.Code)
	}

	// Started just now with an hour to go, and started long enough ago: no
	// clock race either way.
	late := testConfig(nil)
	late.readyAfter = time.Hour
	if rec := get(t, newHandler(late), "/healthz"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("before READY_AFTER: /healthz = %d, want 503", rec.Code)
	}
	late.readyAfter = time.Second
	late.started = time.Now().Add(-2 * time.Second)
	if rec := get(t, newHandler(late), "/healthz"); rec.Code != http.StatusOK {
		t.Errorf("after READY_AFTER: /healthz = %d, want 200", rec.Code)
	}
}

func TestSSEStreamsFlushedEvents(t *testing.T) {
	srv := httptest.NewServer(newHandler(testConfig(nil)))
	defer srv.Close()

	const gap = 500 * time.Millisecond
	start := time.Now()
	resp, err := http.Get(srv.URL + fmt.Sprintf("/sse?n=3&ms=%d", gap.Milliseconds()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type = %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	var arrivals []time.Duration
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data: ") {
			arrivals = append(arrivals, time.Since(start))
			want := fmt.Sprintf("data: event %d of 3 from v7", len(arrivals))
			if sc.Text() != want {
				t.Errorf("event line %q, want %q", sc.Text(), want)
			}
		}
	}
	if len(arrivals) != 3 {
		t.Fatalf("got %d events, want 3", len(arrivals))
	}
	// Flushed one by one: the first arrives at least a gap before the last
	// (buffered, they would arrive together), and the app waited between them.
	if arrivals[2]-arrivals[0] < gap || arrivals[2] < 2*gap {
		t.Errorf("events arrived at %v; want them %s apart, not together", arrivals, gap)
	}
}

func TestWebSocketEcho(t *testing.T) {
	srv := httptest.NewServer(newHandler(testConfig(nil)))
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	const key = "dGhlIHNhbXBsZSBub25jZQ==" // RFC 6455's example key
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", key)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", resp.StatusCode)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; got != want {
		t.Errorf("Sec-WebSocket-Accept = %q, want %q (RFC 6455 example)", got, want)
	}
	for _, msg := range []string{"ping", "hello again"} {
		if _, err := io.WriteString(conn, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(br, buf); err != nil {
			t.Fatal(err)
		}
		if string(buf) != msg {
			t.Errorf("echo = %q, want %q", buf, msg)
		}
	}
}

func TestWebSocketRefusesPlainRequest(t *testing.T) {
	if rec := get(t, newHandler(testConfig(nil)), "/ws"); rec.Code != http.StatusBadRequest {
		t.Errorf("GET /ws without upgrade = %d, want 400", rec.Code)
	}
}

// TestMainDrainsOnSIGTERM runs the real server, sends the test process
// SIGTERM while a slow request is in flight, and expects that request to be
// answered and Main to return cleanly. Main's log (its stdout) says where it
// listens and when the request arrived: no port is guessed, no sleep waits.
func TestMainDrainsOnSIGTERM(t *testing.T) {
	logR, logW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = logW // Main logs to the os.Stdout of its start
	t.Cleanup(func() { os.Stdout = stdout })
	t.Setenv("VERSION", "v9")
	t.Setenv("PORT", "")

	done := make(chan error, 1)
	go func() {
		done <- Main([]string{"-addr", "127.0.0.1:0"})
		logW.Close()
	}()
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(logR)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	waitLine := func(re *regexp.Regexp) []string {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("sampleapp ended before logging %s", re)
				}
				if m := re.FindStringSubmatch(line); m != nil {
					return m
				}
			case <-timeout:
				t.Fatalf("sampleapp did not log %s", re)
			}
		}
	}
	base := "http://" + waitLine(regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`))[1]

	type result struct {
		body string
		err  error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/slow?ms=2000")
		if err != nil {
			slow <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		slow <- result{string(b), err}
	}()
	waitLine(regexp.MustCompile(`GET /slow\?ms=2000`)) // in the handler now
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-slow
	if r.err != nil || r.body != "hello from v9\n" {
		t.Errorf("in-flight request during shutdown: %q, %v", r.body, r.err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Main returned %v", err)
		}
	case <-time.After(ShutdownTimeout):
		t.Fatal("Main did not return after SIGTERM")
	}
}

func TestConfigFromEnvRejectsBadValues(t *testing.T) {
	for _, env := range []struct{ key, value string }{
		{"READY_AFTER", "soon"},
		{"PORT", "http"},
		{"PORT", "70000"},
	} {
		t.Run(env.key+"="+env.value, func(t *testing.T) {
			t.Setenv(env.key, env.value)
			if _, _, err := configFromEnv(); err == nil || !strings.Contains(err.Error(), env.key) {
				t.Errorf("configFromEnv() error = %v, want one naming %s", err, env.key)
			}
		})
	}
}

// The misbehaviours a test asks for: a bad status, a health check that turns
// bad and good again, a crash with a code, memory held on request.
func TestMisbehaviourOnDemand(t *testing.T) {
	cfg := testConfig(nil)
	cfg.status = 500
	exited := -1
	cfg.exit = func(code int) { exited = code }
	h := newHandler(cfg)
	if rec := get(t, h, "/"); rec.Code != 500 || rec.Body.String() != "hello from v7\n" {
		t.Errorf("STATUS=500: / = %d %q", rec.Code, rec.Body)
	}
	post := func(target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, target, nil))
		return rec
	}
	if rec := get(t, h, "/healthz"); rec.Code != 200 {
		t.Fatalf("healthz before: %d", rec.Code)
	}
	post("/health?fail=1")
	if rec := get(t, h, "/healthz"); rec.Code != 500 {
		t.Errorf("healthz after POST /health?fail=1: %d", rec.Code)
	}
	post("/health?fail=0")
	if rec := get(t, h, "/healthz"); rec.Code != 200 {
		t.Errorf("healthz after POST /health?fail=0: %d", rec.Code)
	}
	if rec := post("/crash?code=7"); rec.Code != 200 || exited != 7 {
		t.Errorf("crash: %d, exited with %d", rec.Code, exited)
	}
	if rec := post("/crash?code=0"); rec.Code != 400 {
		t.Errorf("crash with code 0: %d", rec.Code)
	}
	if rec := post("/alloc?mb=2"); rec.Code != 200 || rec.Body.String() != "holding 2 MiB\n" {
		t.Errorf("alloc: %d %q", rec.Code, rec.Body)
	}
	if rec := post("/alloc?mb=99999"); rec.Code != 400 {
		t.Errorf("alloc past the bound: %d", rec.Code)
	}
}
