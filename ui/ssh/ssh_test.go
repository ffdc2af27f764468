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
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/vt"
	gossh "golang.org/x/crypto/ssh"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
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

// world is a running SSH dashboard over a Backend.
type world struct {
	dir  string
	addr string
	srv  *clankssh.Server
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
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, clankssh.ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	for deadline := time.Now().Add(waitWithin); srv.Addr() != l.Addr().String(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) { // Serve has not started yet
			t.Fatalf("the SSH dashboard did not serve within %s", waitWithin)
		}
	}
	return &world{dir: dir, addr: srv.Addr(), srv: srv}
}

// quiet is a real daemon with two services that never deployed (web and
// worker): enough for the tests of who gets in, and cheap (no image, no
// container).
func quiet(t testing.TB) *realdaemon.World {
	t.Helper()
	w := realdaemon.New(t)
	w.CreateService("web", "clank-test/sampleapp:never-built")
	w.CreateService("worker", "clank-test/sampleapp:never-built")
	return w
}

// dial connects as user with the given auth methods.
func (w *world) dial(user string, auth ...gossh.AuthMethod) (*gossh.Client, error) {
	return gossh.Dial("tcp", w.addr, &gossh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: gossh.InsecureIgnoreHostKey(),
		Timeout:         10 * time.Second,
	})
}

// waitWithin bounds every wait for a session's screen: generous, for a
// loaded 2-core machine under -race; a wait may span a whole deployment.
const waitWithin = realdaemon.DeployWithin

// term is an interactive session with a PTY, drawn on a terminal emulator
// (charmbracelet/x/vt) as the user's terminal would: keys in, a screen out.
// The emulator's answers to the program's queries go back as a terminal's do.
type term struct {
	t     testing.TB
	sess  *gossh.Session
	inMu  sync.Mutex
	in    io.WriteCloser
	mu    sync.Mutex
	vt    *vt.Emulator
	raw   bytes.Buffer // every byte drawn
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
	tm := &term{t: t, sess: sess, in: in, vt: vt.NewEmulator(80, 24), ended: make(chan struct{}), drawn: make(chan struct{}, 1)}
	go tm.copy(io.MultiReader(outR, errR))
	go tm.answer()
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
		tm.raw.Write(buf[:n])
		_, _ = tm.vt.Write(buf[:n])
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

// answer sends the emulator's replies (to the program's terminal queries)
// to the session, as a terminal does. It ends with the test process: the
// emulator is never closed, so no read of it races a close.
func (tm *term) answer() {
	buf := make([]byte, 1024)
	for {
		n, err := tm.vt.Read(buf)
		if err != nil {
			return
		}
		tm.inMu.Lock()
		_, err = tm.in.Write(buf[:n])
		tm.inMu.Unlock()
		if err != nil {
			return
		}
	}
}

// screen is what the session's terminal shows now, as text.
func (tm *term) screen() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.vt.String()
}

// text is everything the session drew, escape sequences and blanks removed.
func (tm *term) text() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return squash(ansi.Strip(tm.raw.String()))
}

// since is what the session drew after byte offset off, squashed like text.
func (tm *term) since(off int) string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return squash(ansi.Strip(tm.raw.String()[off:]))
}

// size is how many bytes the session has drawn.
func (tm *term) size() int {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.raw.Len()
}

// squash drops blanks and line breaks: a text the modal wraps still reads
// as one.
func squash(s string) string {
	return strings.Join(strings.Fields(s), "")
}

// waitFor waits until the screen shows all of texts (blanks and line breaks
// do not count).
func (tm *term) waitFor(texts ...string) {
	tm.t.Helper()
	tm.waitUntil(func(screen string) string {
		for _, want := range texts {
			if !strings.Contains(squash(screen), squash(want)) {
				return "never showed " + want
			}
		}
		return ""
	})
}

// waitGone waits until the screen no longer shows text.
func (tm *term) waitGone(text string) {
	tm.t.Helper()
	tm.waitUntil(func(screen string) string {
		if strings.Contains(squash(screen), squash(text)) {
			return "still shows " + text
		}
		return ""
	})
}

// waitLine waits until one line of the screen holds every one of parts.
func (tm *term) waitLine(parts ...string) {
	tm.t.Helper()
	tm.waitUntil(func(screen string) string {
		for line := range strings.Lines(screen) {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return ""
			}
		}
		return "never showed a line with " + strings.Join(parts, " … ")
	})
}

func (tm *term) waitUntil(check func(screen string) string) {
	tm.t.Helper()
	deadline := time.Now().Add(waitWithin)
	for {
		screen := tm.screen()
		missing := check(screen)
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("within %s the session %s; its screen:\n%s", waitWithin, missing, screen)
		}
		select {
		case <-tm.drawn:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// press types keys in one write. An escape can only come last: a key that
// follows it closely is read with it as alt+key, so a test sends ESC alone
// and waits for its effect on the screen before the next key.
func (tm *term) press(keys string) {
	tm.t.Helper()
	if i := strings.IndexByte(keys, 0x1b); i >= 0 && i != len(keys)-1 {
		tm.t.Fatalf("press(%q): an escape must end a write; wait for its effect, then press on", keys)
	}
	tm.inMu.Lock()
	_, err := io.WriteString(tm.in, keys)
	tm.inMu.Unlock()
	if err != nil {
		tm.t.Fatal(err)
	}
}

// resize changes the terminal's size, as a user's window would.
func (tm *term) resize(w, h int) {
	tm.t.Helper()
	tm.mu.Lock()
	tm.vt.Resize(w, h)
	tm.mu.Unlock()
	if err := tm.sess.WindowChange(h, w); err != nil {
		tm.t.Fatal(err)
	}
}

func TestUnknownKeyAndNoKeyAreRefused(t *testing.T) {
	dir := t.TempDir()
	writeAuthorizedKeys(t, dir, authLine(newKey(t), `role="admin"`))
	w := serveOn(t, dir, quiet(t).Client)

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
	w := serveOn(t, dir, quiet(t).Client)

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
	b := quiet(t).Backend()
	w := serveOn(t, dir, b)
	afp, vfp := gossh.FingerprintSHA256(admin.PublicKey()), gossh.FingerprintSHA256(viewer.PublicKey())

	t.Run("admin offered, viewer authenticates", func(t *testing.T) {
		c, err := w.dialOfferingFirst("eve", admin.PublicKey(), viewer)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		tm := startTerm(t, c, true)
		// The header shows a fingerprint's first 8 characters.
		tm.waitFor("worker", "eve ("+vfp[:15], "viewer")
		if strings.Contains(tm.text(), squash(afp[:15])) {
			t.Fatal("the session took the offered admin key's identity")
		}
		tm.press("r")
		tm.waitFor("read-only: viewer role")
		tm.press("y\r")
		tm.waitGone("read-only")
		// A later answer of the daemon, asked after every key above: the
		// worker's deployments.
		tm.press("j\r")
		tm.waitFor("worker deployments", "no deployments yet")
		if acts, plans := b.Acts.Load(), b.Plans.Load(); acts+plans != 0 {
			t.Fatalf("a viewer reached the daemon: %d acts, %d plans", acts, plans)
		}
	})
	t.Run("viewer offered, admin authenticates", func(t *testing.T) {
		c, err := w.dialOfferingFirst("root", viewer.PublicKey(), admin)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		tm := startTerm(t, c, true)
		tm.waitFor("worker", "root ("+afp[:15], "admin")
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
	w := serveOn(t, dir, quiet(t).Client)
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
	q := quiet(t)
	hostKey := func() string {
		w := serveOn(t, dir, q.Client)
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
	w := serveOn(t, dir, quiet(t).Client)
	tm := w.open(t, "alice", k)
	tm.waitFor("worker")
	if strings.Contains(squash(tm.screen()), "webdeployments") {
		t.Fatal("80 columns show deployments beside services")
	}
	// Wide enough for services and deployments side by side.
	tm.resize(160, 48)
	tm.waitFor("web deployments", "no deployments yet")
}

// A status change reaches every session's screen live: the daemon's event
// stream fans out to 20 dashboards when someone else (the CLI) rolls back.
func TestManySessionsSeeAStatusChange(t *testing.T) {
	rw := realdaemon.Start(t)
	b := rw.Backend()
	dir := t.TempDir()
	k := newKey(t)
	writeAuthorizedKeys(t, dir, authLine(k, ""))
	w := serveOn(t, dir, b)

	const n = 20
	terms := make([]*term, n)
	for i := range terms {
		terms[i] = w.open(t, "viewer", k)
	}
	for _, tm := range terms {
		tm.waitFor("web", "ACTIVE")
		tm.press("\r")
	}
	for _, tm := range terms {
		// The deployments' row, by its KIND: "#2" and ACTIVE alone are the
		// services list's row too, there before the table has loaded.
		tm.waitLine("#2 ", "ACTIVE", "deploy")
	}
	deadline := time.Now().Add(waitWithin)
	for w.srv.EventSubscribers() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sessions subscribed", w.srv.EventSubscribers(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := b.Subscribers.Load(); got != 1 {
		t.Fatalf("%d sessions hold %d event streams from the daemon, want one shared", n, got)
	}
	reads := b.DeploymentsCalls.Load()
	rb := rw.Act(api.ActionRequest{Kind: "rollback", Service: realdaemon.Service, Deployment: rw.Old.ID, TriggeredBy: "dave"})
	rw.WaitStatus(rb.ID, "ACTIVE", realdaemon.DeployWithin)
	for _, tm := range terms {
		tm.waitLine("#3 ", "ACTIVE", "rollback of #1")
	}
	if got := b.DeploymentsCalls.Load(); got != reads {
		t.Fatalf("the sessions read the deployments %d times again: the change did not come live", got-reads)
	}
}

func TestShutdownEndsSessions(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	writeAuthorizedKeys(t, dir, authLine(k, ""))
	b := quiet(t).Backend()
	w := serveOn(t, dir, b)
	terms := []*term{w.open(t, "a", k), w.open(t, "b", k)}
	for _, tm := range terms {
		tm.waitFor("worker")
	}
	for deadline := time.Now().Add(waitWithin); w.srv.EventSubscribers() != 2 || b.Subscribers.Load() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of 2 sessions subscribed, %d streams from the daemon", w.srv.EventSubscribers(), b.Subscribers.Load())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := w.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for _, tm := range terms {
		select {
		case <-tm.ended:
		case <-time.After(waitWithin):
			t.Fatal("a session outlived Shutdown")
		}
	}
	// Sessions end at once, not when their clients give up: well under the
	// 10s Shutdown allows, even on a loaded machine.
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %s", d)
	}
	for deadline := time.Now().Add(waitWithin); b.Subscribers.Load() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions to the daemon outlived their sessions", b.Subscribers.Load())
		}
	}
}

// The sessions share one event stream from the daemon; when it ends, each
// session says so, subscribes again (one new stream for all) and shows what
// changed after.
func TestSharedEventStreamComesBack(t *testing.T) {
	rw := realdaemon.New(t)
	rw.CreateService("web", "clank-test/sampleapp:never-built")
	b := &cuttable{Counting: rw.Backend()}
	dir := t.TempDir()
	k := newKey(t)
	writeAuthorizedKeys(t, dir, authLine(k, ""))
	w := serveOn(t, dir, b)
	terms := []*term{w.open(t, "a", k), w.open(t, "b", k)}
	subscribed := func() {
		t.Helper()
		for deadline := time.Now().Add(waitWithin); w.srv.EventSubscribers() != 2 || b.Subscribers.Load() != 1; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d of 2 sessions subscribed, %d streams from the daemon", w.srv.EventSubscribers(), b.Subscribers.Load())
			}
		}
	}
	for _, tm := range terms {
		tm.waitFor("web")
	}
	subscribed()
	b.cut()
	for _, tm := range terms {
		tm.waitFor("event stream lost")
	}
	subscribed()
	if got := b.opened.Load(); got != 2 {
		t.Fatalf("%d streams opened for two sessions and one loss, want 2", got)
	}
	rw.CreateService("worker", "clank-test/sampleapp:never-built")
	for _, tm := range terms {
		tm.waitFor("worker")
		tm.waitGone("event stream lost")
	}
}

// cuttable is the daemon's API client whose event streams the test can end,
// as a daemon going away would.
type cuttable struct {
	*realdaemon.Counting
	opened  atomic.Int64
	mu      sync.Mutex
	cancels []context.CancelFunc
}

func (c *cuttable) Subscribe(ctx context.Context) (<-chan api.Event, error) {
	ctx, cancel := context.WithCancel(ctx)
	c.mu.Lock()
	c.cancels = append(c.cancels, cancel)
	c.mu.Unlock()
	c.opened.Add(1)
	return c.Counting.Subscribe(ctx)
}

// cut ends every stream opened so far.
func (c *cuttable) cut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, cancel := range c.cancels {
		cancel()
	}
	c.cancels = nil
}

func TestFromOptionIsEnforced(t *testing.T) {
	dir := t.TempDir()
	here, elsewhere := newKey(t), newKey(t)
	writeAuthorizedKeys(t, dir, authLine(here, `from="127.0.0.1",role="admin"`), authLine(elsewhere, `from="10.1.2.0/24"`))
	w := serveOn(t, dir, quiet(t).Client)
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
