package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/user"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/docker"
	"github.com/clank-dev/clank/internal/testdocker"
)

// world is a real daemon with web deployed twice (v1, then v2 ACTIVE) and an
// image in its registry that no deployment needs.
type world struct {
	t        *testing.T
	d        *Daemon
	admin    *api.Client
	v1, v2   string
	stray    string // host/repo@digest of the unneeded registry image
	deployed []api.Deployment
}

func startWorld(t *testing.T) *world {
	t.Helper()
	rt := testdocker.Require(t)
	w := &world{t: t, v1: testdocker.SampleImage(t, rt, "v1"), v2: testdocker.SampleImage(t, rt, "v2")}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := Start(ctx, Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RegistryAddr: "127.0.0.1:0",
		KeepImages: -1, DrainTimeout: time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	testdocker.Cleanup(t, rt, map[string]string{engine.LabelOwner: d.Engine.Owner()})
	w.d, w.admin = d, api.NewClient(d.Socket())

	port, health := testdocker.SampleAppPort, "/healthz"
	if _, err := w.admin.CreateService(ctx, api.ServiceSpec{Name: "web", Image: &w.v1, Port: &port, HealthPath: &health,
		Env: map[string]string{"SECRET": "hunter2"}}); err != nil {
		t.Fatal(err)
	}
	for _, img := range []string{w.v1, w.v2} {
		dep, err := w.admin.Act(ctx, api.ActionRequest{Kind: "deploy", Service: "web", Image: img})
		if err != nil {
			t.Fatal(err)
		}
		w.deployed = append(w.deployed, w.waitActive(ctx, dep.ID))
	}

	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	w.stray = d.registryHost() + "/stray@" + digest.String()
	ref, err := name.ParseReference(w.stray, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	cred := d.registry.Credential()
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: cred.Username, Password: cred.Password})); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) waitActive(ctx context.Context, id string) api.Deployment {
	w.t.Helper()
	for {
		dep, _, err := w.admin.Deployment(ctx, id)
		if err == nil && dep.Status == "ACTIVE" {
			return dep
		}
		if err == nil && (dep.Status == "FAILED" || dep.Status == "CANCELLED") {
			w.t.Fatalf("deploy %s: %s %s", id, dep.Status, dep.FailureReason)
		}
		select {
		case <-ctx.Done():
			w.t.Fatalf("deploy %s: not ACTIVE in time (%v)", id, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// call sends method path (with body) over the socket as c (nil: as the
// socket's peer) and returns the status and the API error it answered.
func (w *world) call(method, path string, body []byte, c *api.Caller) (int, api.Error) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", w.d.Socket())
	}}}
	req, err := http.NewRequestWithContext(ctx, method, "http://clank"+path, bytes.NewReader(body))
	if err != nil {
		w.t.Fatal(err)
	}
	if c != nil {
		req.Header.Set(api.HeaderActor, url.QueryEscape(c.Actor))
		req.Header.Set(api.HeaderRole, c.Role)
	}
	resp, err := hc.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close() // a stream (events, logs) is not read to its end
	var e api.Error
	if resp.StatusCode >= 400 {
		_ = json.NewDecoder(resp.Body).Decode(&e)
	}
	return resp.StatusCode, e
}

// request is a call to route as a test makes it: a real path and a body the
// route would accept from an admin.
func (w *world) request(t *testing.T, route string) (method, path string, body []byte) {
	t.Helper()
	method, pattern, _ := strings.Cut(route, " ")
	path = strings.NewReplacer("{name}", "web", "{ref}", "1").Replace(pattern)
	js := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	port := 9999
	switch route {
	case "POST /v1/services":
		body = js(api.ServiceSpec{Name: "evil", Image: &w.v1, Port: &port})
	case "PATCH /v1/services/{name}":
		body = js(api.ServiceSpec{Image: &w.v1, Port: &port})
	case "POST /v1/actions", "POST /v1/plan":
		body = js(api.ActionRequest{Kind: "rollback", Service: "web"})
	case "POST /v1/prune":
		path += "?keep=1" // v1's image would go
	case "GET /v1/deployments/{ref}":
		path += "?service=web"
	case "POST /v1/services/{name}/build":
		path += "?commit=0123456789abcdef"
		t.Cleanup(func() { testdocker.RemoveImage(t, w.d.Runtime, "clank/web:0123456789ab") })
		tar, err := docker.TarContext([]docker.TarFile{{Name: "Dockerfile", Body: []byte("FROM " + w.v1 + "\n")}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(tar)
	default:
		if method != http.MethodGet {
			body = []byte("{}") // a route this test does not know yet
		}
	}
	return method, path, body
}

// What a viewer may call, written out here rather than read from roles.go:
// every GET but the registry's credential, and the plan of an action.
func viewerMay(route string) bool {
	return (strings.HasPrefix(route, "GET ") && route != "GET /v1/registry/credential") || route == "POST /v1/plan" ||
		route == "POST /v1/services/{name}/images/check" // a fresher badge, nothing changed
}

// Every route the API has, the ones added after this test too, called as a
// viewer through the socket: every write is refused with 403 "forbidden"
// naming the caller, and nothing changes; the reads answer.
func TestViewerIsRefusedEveryWrite(t *testing.T) {
	w := startWorld(t)
	ctx := context.Background()
	viewer := &api.Caller{Actor: "bob (SHA256:viewerkey)", Role: api.RoleViewer}
	routes := w.d.apiRoutes().patterns
	if len(routes) < 10 {
		t.Fatalf("the route list has %d routes: %v", len(routes), routes)
	}
	refused := 0
	for _, route := range routes {
		method, path, body := w.request(t, route)
		status, e := w.call(method, path, body, viewer)
		if viewerMay(route) {
			if status != http.StatusOK {
				t.Errorf("viewer %s: %d %+v; want 200", route, status, e)
			}
			continue
		}
		refused++
		if status != http.StatusForbidden || e.Code != "forbidden" || !strings.Contains(e.Error, "bob (SHA256:viewerkey) is a viewer") {
			t.Errorf("viewer %s: %d %+v; want 403 forbidden naming bob", route, status, e)
		}
	}
	if refused < 7 {
		t.Errorf("only %d routes were refused: %v", refused, routes)
	}
	// Env values are secrets: a viewer does not see them.
	if status, e := w.call(http.MethodGet, "/v1/services?show_env=1", nil, viewer); status != http.StatusForbidden || !strings.Contains(e.Error, "env values") {
		t.Errorf("viewer show_env: %d %+v; want 403", status, e)
	}

	// Every refusal was answered before anything happened: nothing changed.
	svcs, err := w.admin.Services(ctx)
	if err != nil || len(svcs) != 1 || svcs[0].Name != "web" || svcs[0].Image != w.v2 || svcs[0].Port != testdocker.SampleAppPort {
		t.Fatalf("services after a viewer's writes: %+v %v", svcs, err)
	}
	if deps, err := w.admin.Deployments(ctx, "web", 100, 0); err != nil || len(deps) != 2 || deps[0].Status != "ACTIVE" {
		t.Fatalf("deployments after a viewer's writes: %+v %v", deps, err)
	}
	if _, err := w.d.Runtime.InspectImage(ctx, w.v1); err != nil {
		t.Errorf("the viewer's prune removed %s: %v", w.v1, err)
	}
	if _, err := w.d.Runtime.InspectImage(ctx, "clank/web:0123456789ab"); !errors.Is(err, engine.ErrImageNotFound) {
		t.Errorf("the viewer's build made an image: %v", err)
	}
	ref, _ := name.ParseReference(w.stray, name.Insecure)
	if _, err := remote.Head(ref); err != nil {
		t.Errorf("the viewer's registry gc removed %s: %v", w.stray, err)
	}

	// The same rollback as an admin goes through: the viewer's was refused
	// for its role, not its body. triggered_by is the caller's, whatever the
	// body claims.
	claim, _ := json.Marshal(api.ActionRequest{Kind: "rollback", Service: "web", TriggeredBy: "mallory"})
	alice := &api.Caller{Actor: "alice (SHA256:adminkey)", Role: api.RoleAdmin}
	if status, e := w.call(http.MethodPost, "/v1/actions", claim, alice); status != http.StatusCreated {
		t.Fatalf("admin rollback: %d %+v", status, e)
	}
	deps, err := w.admin.Deployments(ctx, "web", 1, 0)
	if err != nil || len(deps) != 1 || deps[0].Kind != "rollback" || deps[0].TriggeredBy != alice.Actor {
		t.Fatalf("the admin's rollback: %+v %v; want triggered by %s", deps, err, alice.Actor)
	}
	w.waitActive(ctx, deps[0].ID)
	if status, e := w.call(http.MethodPost, "/v1/actions", claim, nil); status != http.StatusCreated {
		t.Fatalf("rollback as the socket's owner: %d %+v", status, e)
	}
	me, _ := user.Current()
	if deps, _ := w.admin.Deployments(ctx, "web", 1, 0); len(deps) != 1 || deps[0].TriggeredBy != me.Username+" (cli)" {
		t.Fatalf("the owner's rollback was triggered by %q; want %s (cli)", deps[0].TriggeredBy, me.Username)
	}
}

// The on-behalf headers: honoured from an admin peer, refused from any other
// peer, and checked for sense.
func TestOnBehalfHeaders(t *testing.T) {
	d := &Daemon{log: slog.New(slog.DiscardHandler)}
	mux := &routeMux{ServeMux: http.NewServeMux()}
	var got api.Caller
	mux.HandleFunc("POST /v1/actions", func(w http.ResponseWriter, r *http.Request) { got = caller(r) })
	h := d.withRoles(mux.ServeMux)
	send := func(peer *api.Caller, actor, role string) (int, api.Error) {
		req := httptest.NewRequest(http.MethodPost, "/v1/actions", nil)
		if peer != nil {
			req = req.WithContext(context.WithValue(req.Context(), peerKey{}, *peer))
		}
		if actor != "" || role != "" {
			req.Header.Set(api.HeaderActor, actor)
			req.Header.Set(api.HeaderRole, role)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var e api.Error
		_ = json.NewDecoder(rec.Body).Decode(&e)
		return rec.Code, e
	}
	owner := &api.Caller{Actor: "root (cli)", Role: api.RoleAdmin}
	stranger := &api.Caller{Actor: "mallory (cli)", Role: api.RoleViewer}

	got = api.Caller{}
	if code, e := send(owner, url.QueryEscape("alice (SHA256:x y)"), api.RoleAdmin); code != http.StatusOK || got.Actor != "alice (SHA256:x y)" || got.Role != api.RoleAdmin {
		t.Errorf("owner acting for alice: %d %+v, caller %+v", code, e, got)
	}
	for _, tc := range []struct {
		what        string
		peer        *api.Caller
		actor, role string
		code        int
		msg         string
	}{
		{"a stranger claiming admin", stranger, "alice", api.RoleAdmin, http.StatusForbidden, "act on behalf of someone else"},
		{"a stranger with no claim", stranger, "", "", http.StatusForbidden, "mallory (cli) is a viewer"},
		{"the owner acting for a viewer", owner, "bob", api.RoleViewer, http.StatusForbidden, "bob is a viewer"},
		{"an unknown role", owner, "bob", "root", http.StatusBadRequest, "admin or viewer"},
		{"a role without an actor", owner, "", api.RoleAdmin, http.StatusBadRequest, "admin or viewer"},
		{"no peer at all", nil, "", "", http.StatusForbidden, "unknown is a viewer"},
	} {
		got = api.Caller{}
		code, e := send(tc.peer, tc.actor, tc.role)
		if code != tc.code || !strings.Contains(e.Error, tc.msg) || got != (api.Caller{}) {
			t.Errorf("%s: %d %q (handler saw %+v); want %d %q", tc.what, code, e.Error, got, tc.code, tc.msg)
		}
	}
}

// The kernel's word on the socket's peer: this process is the daemon's own
// user, so it is an admin.
func TestPeerOfASocketConnection(t *testing.T) {
	sock := t.TempDir() + "/s.sock"
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	me, _ := user.Current()
	if got := peerOf(server); got.Role != api.RoleAdmin || got.Actor != me.Username+" (cli)" {
		t.Fatalf("peer of a connection from this process: %+v; want %s (cli), admin", got, me.Username)
	}
	if uid, ok := peerUID(server); ok && uid != os.Getuid() {
		t.Fatalf("peer uid %d; want %d", uid, os.Getuid())
	}
}
