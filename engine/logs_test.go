package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

// lockedBuffer is a bytes.Buffer that a followed log writes to while the
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// hitReplica sends GET path straight to one replica's container, which the
// sample app logs as "GET path".
func hitReplica(t *testing.T, r store.Replica, path string) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", r.HostPort, path))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

// A deployment of several replicas has the log of every one of them: each
// line says which replica wrote it, the lines written before come in time
// order, and a followed log goes on with each replica's new lines without
// giving an old one twice.
func TestLogsOfEveryReplica(t *testing.T) {
	h := newHarness(t)
	v1 := testdocker.SampleImage(t, h.rt, "v1")
	defer func() { h.eng.Close() }() // before the image goes
	h.service("web", v1, nil)
	h.scaled("web", 2)
	d := h.act(deploy("web"))
	if d.Status != store.StatusActive || len(d.Containers) != 2 {
		t.Fatalf("#1: %s with containers %+v", d.Status, d.Containers)
	}
	for _, r := range d.Containers {
		hitReplica(t, r, fmt.Sprintf("/from-replica-%d", r.Slot))
	}
	ctx := context.Background()
	logs := func(timestamps bool) string {
		var buf bytes.Buffer
		if err := h.eng.Logs(ctx, d, false, timestamps, &buf); err != nil {
			t.Fatal(err)
		}
		return buf.String()
	}
	// The request lines are written by the time the answers came back, but
	// Docker may hand them to its log a moment later.
	var out string
	h.eventually(10*time.Second, func() string { return out }, func() bool {
		out = logs(false)
		return strings.Contains(out, "GET /from-replica-0") && strings.Contains(out, "GET /from-replica-1")
	})
	for line := range strings.Lines(out) {
		if !strings.HasPrefix(line, "replica 0 | ") && !strings.HasPrefix(line, "replica 1 | ") {
			t.Errorf("a line that does not say its replica: %q", line)
		}
		for slot := range 2 {
			if strings.Contains(line, fmt.Sprintf("GET /from-replica-%d", slot)) && !strings.HasPrefix(line, fmt.Sprintf("replica %d | ", slot)) {
				t.Errorf("replica %d's request under another's name: %q", slot, line)
			}
		}
	}
	if n := strings.Count(out, "listening on"); n != 2 {
		t.Errorf("%d start lines, want one a replica:\n%s", n, out)
	}

	// With times: each line begins with its time, then its replica, and the
	// lines are in time order.
	var last time.Time
	for line := range strings.Lines(logs(true)) {
		stamp, rest, _ := strings.Cut(line, " ")
		at, err := time.Parse(time.RFC3339Nano, stamp)
		if err != nil || !strings.HasPrefix(rest, "replica ") {
			t.Fatalf("a line without its time and replica: %q", line)
		}
		if at.Before(last) {
			t.Errorf("%q comes after a line of %s", line, last.Format(time.RFC3339Nano))
		}
		last = at
	}

	// Followed: the history once, then a new line of replica 1.
	fctx, cancel := context.WithCancel(ctx)
	var followed lockedBuffer
	done := make(chan error, 1)
	go func() { done <- h.eng.Logs(fctx, d, true, false, &followed) }()
	h.eventually(10*time.Second, followed.String, func() bool { return strings.Count(followed.String(), "listening on") == 2 })
	hitReplica(t, d.Containers[1], "/late")
	h.eventually(10*time.Second, followed.String, func() bool {
		return strings.Contains(followed.String(), "replica 1 | ") && strings.Contains(followed.String(), "GET /late")
	})
	// Each replica's lines come in order: once a line written after the
	// history is there, any old line given twice would be there too.
	for _, r := range d.Containers {
		hitReplica(t, r, fmt.Sprintf("/then-%d", r.Slot))
	}
	h.eventually(10*time.Second, followed.String, func() bool {
		return strings.Contains(followed.String(), "GET /then-0") && strings.Contains(followed.String(), "GET /then-1")
	})
	cancel()
	if err := <-done; err != nil {
		t.Errorf("followed logs ended with %v", err)
	}
	got := followed.String()
	for _, once := range []string{"GET /from-replica-0", "GET /from-replica-1", "GET /late"} {
		if n := strings.Count(got, once); n != 1 {
			t.Errorf("%q %d times in the followed log, want once:\n%s", once, n, got)
		}
	}
	if n := strings.Count(got, "listening on"); n != 2 {
		t.Errorf("%d start lines in the followed log, want 2:\n%s", n, got)
	}
	for line := range strings.Lines(got) {
		if strings.Contains(line, "GET /late") && !strings.HasPrefix(line, "replica 1 | ") {
			t.Errorf("replica 1's new line under another name: %q", line)
		}
	}
}
