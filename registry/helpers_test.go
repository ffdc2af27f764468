package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	_ "github.com/distribution/distribution/v3/registry/auth/silly" // the hub stand-in's bearer challenge
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// headCounter counts manifest HEADs that pass through it.
type headCounter struct {
	next  http.Handler
	heads atomic.Int64
}

func (h *headCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/manifests/") {
		h.heads.Add(1)
	}
	h.next.ServeHTTP(w, r)
}

// serve serves h on a fresh 127.0.0.1 port until the test ends.
func serve(tb testing.TB, h http.Handler) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	tb.Cleanup(func() {
		// Close, not Shutdown: a client's spare dial sits in StateNew, which
		// Shutdown waits five seconds for.
		_ = srv.Close()
		<-done
	})
	return l.Addr().String()
}

// clank is an embedded Clank registry for one test, with its HEADs counted.
type clank struct {
	srv     *Server
	addr    string
	counter *headCounter
}

func startClank(tb testing.TB) *clank {
	tb.Helper()
	s, err := NewServer(context.Background(), tb.TempDir())
	if err != nil {
		tb.Fatalf("NewServer: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close registry: %v", err)
		}
	})
	c := &clank{srv: s, counter: &headCounter{next: s.Handler()}}
	c.addr = serve(tb, c.counter)
	return c
}

// writer is the option that pushes to and deletes from s need.
func writer(s *Server) remote.Option {
	c := s.Credential()
	return remote.WithAuth(&authn.Basic{Username: c.Username, Password: c.Password})
}

// auth is the option that pushes to and deletes from c need.
func (c *clank) auth() remote.Option { return writer(c.srv) }

// Credentials the hub stand-in accepts for its private repositories.
const (
	hubUser     = "clank"
	hubPassword = "s3cret"
)

// hub stands in for Docker Hub or GHCR: distribution behind the silly access
// controller (a real Bearer challenge; any token is accepted) with a token
// endpoint that refuses repositories under "private/" without the right
// Basic credentials. Repositories under "broken/" answer 500, under
// "limited/" 429, and under "slow/" sleep past any test's check timeout.
type hub struct {
	addr    string
	counter *headCounter
	tokens  atomic.Int64
}

func startHub(tb testing.TB) *hub {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // the address goes into the challenge; serve() listens again below

	cfg := &configuration.Configuration{
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": tb.TempDir()},
			"delete":     configuration.Parameters{"enabled": true},
		},
		Auth: configuration.Auth{
			"silly": configuration.Parameters{"realm": "http://" + addr + "/token", "service": "hub.test"},
		},
	}
	cfg.HTTP.Secret = "hub-test-secret"
	cfg.Log.AccessLog.Disabled = true
	quietLogrus()
	ctx, cancel := context.WithCancel(context.Background())
	app := handlers.NewApp(ctx, cfg)
	tb.Cleanup(func() { _ = app.Shutdown(); cancel() })

	h := &hub{addr: addr}
	h.counter = &headCounter{next: app}
	mux := http.NewServeMux()
	mux.HandleFunc("/token", h.token)
	mux.Handle("/", faults(h.counter))

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatalf("listen again on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return h
}

// token is the hub's token endpoint.
func (h *hub) token(w http.ResponseWriter, r *http.Request) {
	h.tokens.Add(1)
	_ = r.ParseForm()
	scope := r.Form.Get("scope")
	if strings.Contains(scope, "repository:private/") {
		user, pass, ok := r.BasicAuth()
		if !ok || user != hubUser || pass != hubPassword {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": "t-" + scope, "access_token": "t-" + scope, "expires_in": 300})
}

// faults injects the hub's failing repositories.
func faults(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/v2/broken/"):
			w.WriteHeader(http.StatusInternalServerError)
			return
		case strings.HasPrefix(r.URL.Path, "/v2/limited/"):
			w.WriteHeader(http.StatusTooManyRequests)
			return
		case strings.HasPrefix(r.URL.Path, "/v2/slow/"):
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// dockerConfig points the Docker keychain (HOME and DOCKER_CONFIG) at a
// temporary config.json holding auths.
func dockerConfig(tb testing.TB, auths map[string][2]string) {
	tb.Helper()
	home := tb.TempDir()
	dir := filepath.Join(home, ".docker")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	entries := map[string]any{}
	for host, up := range auths {
		entries[host] = map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(up[0] + ":" + up[1]))}
	}
	body, err := json.Marshal(map[string]any{"auths": entries})
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), body, 0o600); err != nil {
		tb.Fatal(err)
	}
	tb.Setenv("HOME", home)
	tb.Setenv("DOCKER_CONFIG", dir)
}

// hubAuth is a keychain with the hub's credentials, for pushing test content.
func hubAuth() remote.Option {
	return remote.WithAuth(&authn.Basic{Username: hubUser, Password: hubPassword})
}

// pushRandom pushes a small random image to ref ("host/repo:tag", or
// "host/repo" to push by digest only) and returns its digest.
func pushRandom(tb testing.TB, ref string, opts ...remote.Option) string {
	tb.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		tb.Fatal(err)
	}
	return pushImage(tb, ref, img, opts...)
}

func pushImage(tb testing.TB, ref string, img v1.Image, opts ...remote.Option) string {
	tb.Helper()
	d, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	target := ref
	if !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
		target = ref + "@" + d.String()
	}
	r, err := name.ParseReference(target, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		tb.Fatalf("push %s: %v", target, err)
	}
	return d.String()
}

// deleteRef sends DELETE for ref (a tag untags; a digest deletes the manifest).
func deleteRef(tb testing.TB, ref string, opts ...remote.Option) {
	tb.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	if err := remote.Delete(r, opts...); err != nil {
		tb.Fatalf("delete %s: %v", ref, err)
	}
}
