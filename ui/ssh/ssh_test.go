package ssh_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/fakebackend"
	clankssh "github.com/clank-dev/clank/ui/ssh"
)

// newKey makes a client key pair.
func newKey(t testing.TB) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authLine is an authorized_keys line for a key, with OpenSSH options.
func authLine(k gossh.Signer, options string) string {
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k.PublicKey())))
	if options != "" {
		line = options + " " + line
	}
	return line + " test-key\n"
}

func writeAuthorizedKeys(t testing.TB, dir string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, clankssh.AuthorizedKeysFile), []byte(strings.Join(lines, "")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// world is a running SSH dashboard over the fake backend.
type world struct {
	dir  string
	addr string
	b    *fakebackend.Backend
	srv  *clankssh.Server
}

func startServer(t testing.TB, dir string, b *fakebackend.Backend) *world {
	t.Helper()
	w := serveOn(t, dir, b)
	w.b = b
	return w
}

// serveOn runs the SSH dashboard on 127.0.0.1 over any Backend.
func serveOn(t testing.TB, dir string, b ui.Backend) *world {
	t.Helper()
	srv, err := clankssh.NewServer(clankssh.ServerOptions{DataDir: dir, Backend: b, Host: "testhost",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, clankssh.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	for srv.Addr() != l.Addr().String() {
		time.Sleep(time.Millisecond) // Serve has not started yet
	}
	return &world{dir: dir, addr: srv.Addr(), srv: srv}
}

func demo() *fakebackend.Backend {
	b := fakebackend.New()
	b.AddService(api.Service{Name: "web", Image: "nginx:1.26", Port: 8080})
	b.AddService(api.Service{Name: "worker", Image: "acme/worker", Port: 9000})
	b.AddHistory("web", 5)
	return b
}

// dial connects as user with the given auth methods.
func (w *world) dial(user string, auth ...gossh.AuthMethod) (*gossh.Client, error) {
	return gossh.Dial("tcp", w.addr, &gossh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Timeout:         5 * time.Second,
	})
}

// term is an interactive session with a PTY: keys in, screen bytes out.
type term struct {
	t     testing.TB
	sess  *gossh.Session
	in    io.WriteCloser
	mu    sync.Mutex
	out   bytes.Buffer
	ended chan struct{}
	drawn chan struct{} // signalled after each read of screen bytes
}

func (w *world) open(t testing.TB, user string, keys ...gossh.Signer) *term {
	t.Helper()
	c, err := w.dial(user, gossh.PublicKeys(keys...))
	if err != nil {
		t.Fatalf("dial as %s: %v", user, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return startTerm(t, c, true)
}

func startTerm(t testing.TB, c *gossh.Client, pty bool) *term {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if pty {
		if err := sess.RequestPty("xterm-256color", 24, 80, gossh.TerminalModes{}); err != nil {
			t.Fatal(err)
		}
	}
	in, err := sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, err := sess.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	tm := &term{t: t, sess: sess, in: in, ended: make(chan struct{}), drawn: make(chan struct{}, 1)}
	go tm.copy(io.MultiReader(outR, errR))
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sess.Close() })
	return tm
}

func (tm *term) copy(r io.Reader) {
	defer close(tm.ended)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		tm.mu.Lock()
		tm.out.Write(buf[:n])
		tm.mu.Unlock()
		select {
		case tm.drawn <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// text is everything the session drew, escape sequences and blanks removed:
// the renderer moves the cursor over cells that did not change, so only the
// letters are compared.
func (tm *term) text() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return squash(ansi.Strip(tm.out.String()))
}

// since is what the session drew after byte offset off, squashed like text.
func (tm *term) since(off int) string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return squash(ansi.Strip(tm.out.String()[off:]))
}

// size is how many bytes the session has drawn.
func (tm *term) size() int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.out.Len()
}

func squash(s string) string {
	return strings.Join(strings.Fields(s), "")
}

func (tm *term) waitFor(texts ...string) {
	tm.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := tm.text()
		missing := ""
		for _, want := range texts {
			if !strings.Contains(got, squash(want)) {
				missing = want
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("session never showed %q; it showed:\n%s", missing, got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (tm *term) press(keys string) {
	tm.t.Helper()
	for _, k := range keys {
		if _, err := io.WriteString(tm.in, string(k)); err != nil {
			tm.t.Fatal(err)
		}
		// One key per read, as a person types: an escape alone is only
		// told apart from a sequence by the pause after it.
		time.Sleep(60 * time.Millisecond)
	}
}

func TestAdminRollsBackAsTheirKey(t *testing.T) {
	dir := t.TempDir()
	admin := newKey(t)
	writeAuthorizedKeys(t, dir, authLine(admin, `role="admin"`))
	w := startServer(t, dir, demo())

	tm := w.open(t, "alice", admin)
	fp := gossh.FingerprintSHA256(admin.PublicKey())
	tm.waitFor("testhost", "worker", "admin")
	tm.press("\r")
	tm.waitFor("web deployments")
	tm.press("jr")
	tm.waitFor("Changes against ACTIVE #5")
	tm.press("y")
	tm.waitFor("#6 rollback of #4")

	acts := w.b.Acts()
	want := api.ActionRequest{Kind: "rollback", Service: "web", Deployment: "web-4", TriggeredBy: "alice (" + fp + ")"}
	if len(acts) != 1 || acts[0] != want {
		t.Fatalf("acts = %+v, want %+v", acts, want)
	}
}

func TestViewerCannotAct(t *testing.T) {
	dir := t.TempDir()
	viewer, plain := newKey(t), newKey(t)
	writeAuthorizedKeys(t, dir, authLine(viewer, `role="viewer"`), authLine(plain, ""))
	w := startServer(t, dir, demo())

	for _, k := range []gossh.Signer{viewer, plain} { // no role = viewer
		tm := w.open(t, "bob", k)
		tm.waitFor("worker", "viewer")
		tm.press("\r")
		tm.waitFor("web deployments")
		tm.press("r")
		tm.waitFor("read-only: viewer role")
		tm.press("y")
		tm.press("\x1b")
		tm.press("R")
		tm.waitFor("with the current config")
		tm.press("y")
		time.Sleep(100 * time.Millisecond)
	}
	if plans, acts := w.b.Plans(), w.b.Acts(); len(plans)+len(acts) != 0 {
		t.Fatalf("a viewer reached the backend: plans %+v acts %+v", plans, acts)
	}
}

func TestUnknownKeyAndNoKeyAreRefused(t *testing.T) {
	dir := t.TempDir()
	writeAuthorizedKeys(t, dir, authLine(newKey(t), `role="admin"`))
	w := startServer(t, dir, demo())

	cases := map[string][]gossh.AuthMethod{
		"unknown key": {gossh.PublicKeys(newKey(t))},
		"no key":      nil,
		"password":    {gossh.Password("hunter2")},
		"keyboard-interactive": {gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			return []string{"hunter2"}, nil
		})},
	}
	for name, auth := range cases {
		t.Run(name, func(t *testing.T) {
			c, err := w.dial("mallory", auth...)
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if !strings.Contains(err.Error(), "unable to authenticate") {
				t.Fatalf("err = %v, want an authentication failure", err)
			}
		})
	}
}

func TestChangedAuthorizedKeysTakeEffect(t *testing.T) {
	dir := t.TempDir()
	carol, dave := newKey(t), newKey(t)
	writeAuthorizedKeys(t, dir, authLine(carol, `role="viewer"`))
	w := startServer(t, dir, demo())

	w.open(t, "carol", carol).waitFor("viewer")
	if _, err := w.dial("dave", gossh.PublicKeys(dave)); err == nil {
		t.Fatal("dave connected before being authorized")
	}

	// Carol becomes an admin, dave a viewer.
	writeAuthorizedKeys(t, dir, authLine(carol, `role="admin"`), authLine(dave, ""))
	w.open(t, "carol", carol).waitFor("worker", "admin")
	w.open(t, "dave", dave).waitFor("worker", "viewer")

	// Carol is removed.
	writeAuthorizedKeys(t, dir, authLine(dave, ""))
	if _, err := w.dial("carol", gossh.PublicKeys(carol)); err == nil {
		t.Fatal("carol connected after removal")
	}
}

// offerOnly offers a public key it cannot sign for: the server's callback
// sees the key, the client never proves it holds it.
type offerOnly struct{ pub gossh.PublicKey }

func (s offerOnly) PublicKey() gossh.PublicKey { return s.pub }
func (s offerOnly) Sign(io.Reader, []byte) (*gossh.Signature, error) {
	return nil, errors.New("no private key")
}

// dialOfferingFirst offers one key, then authenticates with another: each as
// its own publickey attempt, in that order.
func (w *world) dialOfferingFirst(user string, offered gossh.PublicKey, signer gossh.Signer) (*gossh.Client, error) {
	steps := []gossh.AuthMethod{gossh.PublicKeys(offerOnly{offered}), gossh.PublicKeys(signer)}
	return gossh.Dial("tcp", w.addr, &gossh.ClientConfig{
		User:            user,
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Timeout:         5 * time.Second,
		AuthCallback: func(*gossh.ClientAuthContext) (gossh.AuthMethod, error) {
			if len(steps) == 0 {
				return nil, nil
			}
			next := steps[0]
			steps = steps[1:]
			return next, nil
		},
	})
}

func TestOnlyTheAuthenticatingKeyCounts(t *testing.T) {
	dir := t.TempDir()
	admin, viewer := newKey(t), newKey(t)
	writeAuthorizedKeys(t, dir, authLine(admin, `role="admin"`), authLine(viewer, `role="viewer"`))
	w := startServer(t, dir, demo())
	afp, vfp := gossh.FingerprintSHA256(admin.PublicKey()), gossh.FingerprintSHA256(viewer.PublicKey())

	t.Run("admin offered, viewer authenticates", func(t *testing.T) {
		c, err := w.dialOfferingFirst("eve", admin.PublicKey(), viewer)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		tm := startTerm(t, c, true)
		tm.waitFor("worker", "eve ("+vfp[:20], "viewer")
		if strings.Contains(tm.text(), squash(afp[:20])) {
			t.Fatal("the session took the offered admin key's identity")
		}
		tm.press("\r")
		tm.waitFor("web deployments")
		tm.press("r")
		tm.waitFor("read-only: viewer role")
		if acts, plans := w.b.Acts(), w.b.Plans(); len(acts)+len(plans) != 0 {
			t.Fatalf("a viewer reached the backend: %+v %+v", acts, plans)
		}
	})
	t.Run("viewer offered, admin authenticates", func(t *testing.T) {
		c, err := w.dialOfferingFirst("root", viewer.PublicKey(), admin)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		tm := startTerm(t, c, true)
		tm.waitFor("worker", "root ("+afp[:20], "admin")
	})
	t.Run("offered only", func(t *testing.T) {
		c, err := w.dial("eve", gossh.PublicKeys(offerOnly{admin.PublicKey()}))
		if err == nil {
			c.Close()
			t.Fatal("an offered key without its private half connected")
		}
	})
}

func TestSessionWithoutATerminalIsRefused(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	writeAuthorizedKeys(t, dir, authLine(k, `role="admin"`))
	w := startServer(t, dir, demo())
	c, err := w.dial("alice", gossh.PublicKeys(k))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tm := startTerm(t, c, false)
	tm.waitFor("the dashboard needs a terminal")
	var exit *gossh.ExitError
	if err := tm.sess.Wait(); !errors.As(err, &exit) || exit.ExitStatus() != 1 {
		t.Fatalf("session ended with %v, want exit status 1", err)
	}
}

func TestHostKeyIsGeneratedOnceAndKept(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	writeAuthorizedKeys(t, dir, authLine(k, ""))
	hostKey := func() string {
		w := startServer(t, dir, demo())
		var seen string
		c, err := gossh.Dial("tcp", w.addr, &gossh.ClientConfig{User: "x", Auth: []gossh.AuthMethod{gossh.PublicKeys(k)},
			HostKeyCallback: func(_ string, _ net.Addr, key gossh.PublicKey) error {
				seen = gossh.FingerprintSHA256(key)
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = w.srv.Shutdown(ctx)
		return seen
	}
	first, second := hostKey(), hostKey()
	if first == "" || first != second {
		t.Fatalf("host key changed across restarts: %s then %s", first, second)
	}
	st, err := os.Stat(filepath.Join(dir, clankssh.HostKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("host key mode %v, want 0600", st.Mode().Perm())
	}
}

func TestWindowResizeIsFollowed(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	writeAuthorizedKeys(t, dir, authLine(k, ""))
	w := startServer(t, dir, demo())
	tm := w.open(t, "alice", k)
	tm.waitFor("worker")
	if strings.Contains(tm.text(), "webdeployments") {
		t.Fatal("80 columns show deployments beside services")
	}
	// Wide enough for services and deployments side by side.
	if err := tm.sess.WindowChange(48, 160); err != nil {
		t.Fatal(err)
	}
	tm.waitFor("web deployments", "Rollback capable")
}

func TestManySessionsSeeAStatusChange(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	writeAuthorizedKeys(t, dir, authLine(k, ""))
	w := startServer(t, dir, demo())

	const n = 20
	terms := make([]*term, n)
	for i := range terms {
		terms[i] = w.open(t, "viewer", k)
	}
	for _, tm := range terms {
		tm.waitFor("worker", "ACTIVE")
	}
	deadline := time.Now().Add(5 * time.Second)
	for w.b.Subscribers() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sessions subscribed", w.b.Subscribers(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Someone deploys web: every screen shows it, with no key pressed.
	if _, err := w.b.Act(context.Background(), api.ActionRequest{Kind: "deploy", Service: "web"}); err != nil {
		t.Fatal(err)
	}
	for _, tm := range terms {
		tm.waitFor("DEPLOYING")
	}
}

func TestShutdownEndsSessions(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	writeAuthorizedKeys(t, dir, authLine(k, ""))
	w := startServer(t, dir, demo())
	terms := []*term{w.open(t, "a", k), w.open(t, "b", k)}
	for _, tm := range terms {
		tm.waitFor("worker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := w.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, tm := range terms {
		select {
		case <-tm.ended:
		case <-time.After(5 * time.Second):
			t.Fatal("a session outlived Shutdown")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Shutdown took %s", d)
	}
	for deadline := time.Now().Add(5 * time.Second); w.b.Subscribers() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions outlived their sessions", w.b.Subscribers())
		}
	}
}

func TestFromOptionIsEnforced(t *testing.T) {
	dir := t.TempDir()
	here, elsewhere := newKey(t), newKey(t)
	writeAuthorizedKeys(t, dir, authLine(here, `from="127.0.0.1",role="admin"`), authLine(elsewhere, `from="10.1.2.0/24"`))
	w := startServer(t, dir, demo())
	c, err := w.dial("a", gossh.PublicKeys(here))
	if err != nil {
		t.Fatalf("from=127.0.0.1 refused a loopback client: %v", err)
	}
	c.Close()
	if c, err := w.dial("b", gossh.PublicKeys(elsewhere)); err == nil {
		c.Close()
		t.Fatal("from=10.1.2.0/24 let a loopback client in")
	}
}
