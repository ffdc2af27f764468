package sampleapp

import (
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bounds on what a request may ask for.
const (
	maxSlow      = 5 * time.Minute
	maxSSEEvents = 10000
	maxAllocMiB  = 4096
)

// websocketGUID is the fixed key suffix of RFC 6455's opening handshake.
const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// newHandler serves the app's endpoints; every answer carries X-App-Version.
func newHandler(cfg config) http.Handler {
	mux := http.NewServeMux()
	var healthFail atomic.Bool // POST /health?fail=1 turns the health check bad
	healthFail.Store(cfg.healthFail)
	var hoard [][]byte // what POST /alloc keeps
	var hoardMu sync.Mutex
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if cfg.status != 0 {
			w.WriteHeader(cfg.status)
		}
		fmt.Fprintf(w, "hello from %s\n", cfg.version)
	})
	mux.HandleFunc("POST /health", func(w http.ResponseWriter, r *http.Request) {
		healthFail.Store(r.URL.Query().Get("fail") == "1")
		fmt.Fprintf(w, "health check failing: %v\n", healthFail.Load())
	})
	mux.HandleFunc("POST /crash", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(r.URL.Query().Get("code"))
		if err != nil || code < 1 || code > 125 {
			http.Error(w, "code: want 1..125", http.StatusBadRequest)
			return
		}
		io.WriteString(w, "crashing\n")
		http.NewResponseController(w).Flush()
		cfg.exit(code)
	})
	mux.HandleFunc("POST /alloc", func(w http.ResponseWriter, r *http.Request) {
		mib, err := strconv.Atoi(r.URL.Query().Get("mb"))
		if err != nil || mib < 1 || mib > maxAllocMiB {
			http.Error(w, fmt.Sprintf("mb: want 1..%d", maxAllocMiB), http.StatusBadRequest)
			return
		}
		// Touch every page, so that the memory is really used (and a
		// container over its limit is OOM killed).
		hoardMu.Lock()
		for range mib {
			b := make([]byte, 1<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			hoard = append(hoard, b)
		}
		held := len(hoard)
		hoardMu.Unlock()
		fmt.Fprintf(w, "holding %d MiB\n", held)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case healthFail.Load():
			http.Error(w, "unhealthy (HEALTH=fail or POST /health?fail=1)", http.StatusInternalServerError)
		case time.Since(cfg.started) < cfg.readyAfter:
			http.Error(w, "starting", http.StatusServiceUnavailable)
		default:
			io.WriteString(w, "ok\n")
		}
	})
	mux.HandleFunc("GET /env/{key}", func(w http.ResponseWriter, r *http.Request) {
		v, ok := cfg.lookupEnv(r.PathValue("key"))
		if !ok {
			http.Error(w, "not set", http.StatusNotFound)
			return
		}
		io.WriteString(w, v)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		d, ok := durationParam(w, r, "ms", 0, maxSlow)
		if !ok {
			return
		}
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "hello from %s\n", cfg.version)
	})
	mux.HandleFunc("GET /sse", func(w http.ResponseWriter, r *http.Request) {
		serveSSE(w, r, cfg.version)
	})
	mux.HandleFunc("GET /ws", serveEcho)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-App-Version", cfg.version)
		mux.ServeHTTP(w, r)
	})
}

// serveSSE sends n events ms milliseconds apart, flushing each.
func serveSSE(w http.ResponseWriter, r *http.Request, version string) {
	n := 3
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 || n > maxSSEEvents {
			http.Error(w, fmt.Sprintf("n=%q: want 0..%d", v, maxSSEEvents), http.StatusBadRequest)
			return
		}
	}
	gap, ok := durationParam(w, r, "ms", 100*time.Millisecond, maxSlow)
	if !ok {
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	for i := 1; i <= n; i++ {
		if i > 1 {
			select {
			case <-time.After(gap):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(w, "id: %d\ndata: event %d of %d from %s\n\n", i, i, n, version)
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// serveEcho answers a WebSocket opening handshake with 101 and then echoes
// the raw bytes it receives until the client closes. It does not speak the
// frame protocol: it only shows that an upgraded connection gets through.
func serveEcho(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Sec-WebSocket-Key")
	if !headerHas(r.Header, "Upgrade", "websocket") || !headerHas(r.Header, "Connection", "upgrade") || key == "" {
		http.Error(w, "want a WebSocket upgrade", http.StatusBadRequest)
		return
	}
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot hijack: "+err.Error(), http.StatusInternalServerError)
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Time{})
	fmt.Fprintf(rw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", websocketAccept(key))
	if err := rw.Flush(); err != nil {
		return
	}
	// rw.Reader first yields what the server had already buffered, then reads conn.
	_, _ = io.Copy(conn, rw.Reader)
}

// websocketAccept is the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.
func websocketAccept(key string) string {
	sum := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// headerHas reports whether a comma-separated header holds token (case-insensitive).
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// durationParam reads a millisecond count from the query, answering 400 itself
// when it is malformed.
func durationParam(w http.ResponseWriter, r *http.Request, name string, def, limit time.Duration) (time.Duration, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	ms, err := strconv.Atoi(v)
	d := time.Duration(ms) * time.Millisecond
	if err != nil || ms < 0 || d > limit {
		http.Error(w, fmt.Sprintf("%s=%q: want 0..%d milliseconds", name, v, limit.Milliseconds()), http.StatusBadRequest)
		return 0, false
	}
	return d, true
}
