package ssh

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
)

func pubLine(t *testing.T) (gossh.PublicKey, string) {
	t.Helper()
	k := signer(t).PublicKey()
	return k, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))
}

func signer(t *testing.T) gossh.Signer {
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

func TestParseAuthorizedKeys(t *testing.T) {
	type key struct {
		name, options string
		want          *grant // nil: the line is refused
	}
	keys := []key{
		{"admin", `role="admin"`, &grant{role: ui.RoleAdmin}},
		{"viewer without a terminal", `no-pty,role="viewer"`, &grant{role: ui.RoleViewer, noPTY: true}},
		{"no role is a viewer", ``, &grant{role: ui.RoleViewer}},
		{"unknown role is a viewer", `role="root"`, &grant{role: ui.RoleViewer}},
		{"addresses are kept", `from="10.0.0.0/8,192.168.1.5",role="admin"`, &grant{role: ui.RoleAdmin, sourceAddress: "10.0.0.0/8,192.168.1.5/32"}},
		{"expiry in UTC", `expiry-time="20300102Z"`, &grant{role: ui.RoleViewer, expires: time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)}},
		{"expiry to the second, local time", `expiry-time="20300102030405"`, &grant{role: ui.RoleViewer, expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.Local)}},
		{"restrict forbids a terminal", `restrict,role="admin"`, &grant{role: ui.RoleAdmin, noPTY: true}},
		{"restrict then pty allows one", `restrict,pty,role="admin"`, &grant{role: ui.RoleAdmin}},
		{"no-touch-required", `no-touch-required`, &grant{role: ui.RoleViewer, noTouch: true}},
		{"forwarding options change nothing", `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc,permitopen="db:5432",permitlisten="8080",port-forwarding,agent-forwarding,x11-forwarding,user-rc`, &grant{role: ui.RoleViewer}},
		{"options are case-insensitive", `NO-PTY,Role="admin"`, &grant{role: ui.RoleAdmin, noPTY: true}},
		{"command", `command="/bin/sh",role="admin"`, nil},
		{"environment", `environment="A=1"`, nil},
		{"tunnel", `tunnel="0"`, nil},
		{"cert-authority", `cert-authority`, nil},
		{"principals", `principals="alice"`, nil},
		{"verify-required", `verify-required`, nil},
		{"unknown option", `no-such-option`, nil},
		{"host pattern", `from="*.example.com"`, nil},
		{"bad expiry", `expiry-time="tomorrow"`, nil},
		{"expiry with a bad date", `expiry-time="20301399"`, nil},
	}
	var lines []string
	pubs := map[string]gossh.PublicKey{}
	lines = append(lines, "# comment", "", "ssh-ed25519 not-base64!!")
	for _, k := range keys {
		pub, line := pubLine(t)
		pubs[k.name] = pub
		if k.options != "" {
			line = k.options + " " + line
		}
		lines = append(lines, line+" "+strings.ReplaceAll(k.name, " ", "-"))
	}
	var logs bytes.Buffer
	grants := parseAuthorizedKeys([]byte(strings.Join(lines, "\n")), slog.New(slog.NewTextHandler(&logs, nil)))
	granted := 0
	for i, k := range keys {
		got := grants[string(pubs[k.name].Marshal())]
		if k.want == nil {
			if len(got) != 0 {
				t.Errorf("%s: granted %+v, want the line refused", k.name, got)
			}
			continue
		}
		granted++
		want := *k.want
		want.line = i + 4
		if len(got) != 1 || got[0] != want {
			t.Errorf("%s: got %+v, want %+v", k.name, got, want)
		}
	}
	if len(grants) != granted {
		t.Errorf("%d keys granted, want %d", len(grants), granted)
	}
	for _, reason := range []string{"Clank is not a shell", "unknown option", "certificates are not accepted", "expiry-time", "not a key"} {
		if !strings.Contains(logs.String(), reason) {
			t.Errorf("no warning says %q:\n%s", reason, logs.String())
		}
	}
}

// keysWorld is the SSH server on 127.0.0.1 with a data dir whose
// authorized_keys the test writes; its dashboard has no daemon behind it,
// which is enough to show a session's role in the header.
type keysWorld struct {
	dir, addr string
	logs      *syncLog
}

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startKeysWorld(t *testing.T) *keysWorld {
	t.Helper()
	w := &keysWorld{dir: t.TempDir(), logs: &syncLog{}}
	srv, err := NewServer(ServerOptions{DataDir: w.dir, Backend: api.NewClient("/nonexistent/clank.sock"),
		Host: "testhost", Logger: slog.New(slog.NewTextHandler(w.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = l.Addr().String() // the kernel queues connections until Serve accepts them
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return w
}

func (w *keysWorld) path() string { return filepath.Join(w.dir, AuthorizedKeysFile) }

func (w *keysWorld) write(t *testing.T, lines ...string) {
	t.Helper()
	if err := os.WriteFile(w.path(), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// dial authenticates with key over a real SSH client; nil means admitted.
func (w *keysWorld) dial(t *testing.T, key gossh.Signer) (*gossh.Client, error) {
	t.Helper()
	c, err := gossh.Dial("tcp", w.addr, &gossh.ClientConfig{
		User: "tester", Auth: []gossh.AuthMethod{gossh.PublicKeys(key)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 30 * time.Second,
	})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

func (w *keysWorld) admitted(t *testing.T, key gossh.Signer, want bool, why string) {
	t.Helper()
	_, err := w.dial(t, key)
	switch {
	case want && err != nil:
		t.Fatalf("%s: refused: %v\nserver log:\n%s", why, err, w.logs)
	case !want && err == nil:
		t.Fatalf("%s: admitted\nserver log:\n%s", why, w.logs)
	case !want && !strings.Contains(err.Error(), "unable to authenticate"):
		t.Fatalf("%s: %v, want an authentication failure", why, err)
	}
}

// screen opens a session with a terminal and returns what it shows once
// the output holds want (or the session ends): the dashboard's header names
// the role; a refused session says why and ends.
func (w *keysWorld) screen(t *testing.T, key gossh.Signer, want string) string {
	t.Helper()
	c, err := w.dial(t, key)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm-256color", 30, 240, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	// A terminal shows both streams; a refusal is written to stderr.
	var buf syncLog
	sess.Stdout, sess.Stderr = &buf, &buf
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan struct{})
	go func() { sess.Wait(); close(ended) }()
	deadline := time.After(30 * time.Second)
	for {
		text := ansi.Strip(buf.String())
		if strings.Contains(text, want) {
			return text
		}
		select {
		case <-ended:
			return ansi.Strip(buf.String())
		case <-deadline:
			t.Fatalf("the session never showed %q; it showed:\n%s", want, text)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func authorizedLine(k gossh.Signer, options string) string {
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k.PublicKey())))
	if options != "" {
		line = options + " " + line
	}
	return line + " test-key"
}

// A missing, unreadable or non-regular authorized_keys refuses every key and
// says why in the log; fixed, it is read again without a restart.
func TestAuthorizedKeysMissingOrUnreadable(t *testing.T) {
	w := startKeysWorld(t)
	alice := signer(t)
	w.admitted(t, alice, false, "no authorized_keys")
	if !strings.Contains(w.logs.String(), "no authorized_keys: every key is refused") {
		t.Errorf("the log does not say the file is missing:\n%s", w.logs)
	}

	if err := os.Mkdir(w.path(), 0o700); err != nil {
		t.Fatal(err)
	}
	w.admitted(t, alice, false, "authorized_keys is a directory")
	if !strings.Contains(w.logs.String(), "cannot read authorized_keys") {
		t.Errorf("the log does not say the file cannot be read:\n%s", w.logs)
	}
	os.Remove(w.path())

	// A FIFO would block a plain read until a writer came: refused at once.
	if err := syscall.Mkfifo(w.path(), 0o600); err != nil {
		t.Fatal(err)
	}
	w.admitted(t, alice, false, "authorized_keys is a FIFO")
	if !strings.Contains(w.logs.String(), "not a regular file") {
		t.Errorf("the log does not say the FIFO is not a regular file:\n%s", w.logs)
	}
	os.Remove(w.path())

	w.write(t, authorizedLine(alice, `role="admin"`))
	w.admitted(t, alice, true, "authorized_keys written")
	os.Remove(w.path())
	w.admitted(t, alice, false, "authorized_keys removed again")
}

// A rewrite that keeps the size and the modification time still takes
// effect: the file's bytes are what count.
func TestAuthorizedKeysSameSizeRewrite(t *testing.T) {
	w := startKeysWorld(t)
	alice, bob := signer(t), signer(t)
	w.write(t, authorizedLine(alice, `role="admin"`))
	w.admitted(t, alice, true, "alice listed")
	before, err := os.Stat(w.path())
	if err != nil {
		t.Fatal(err)
	}

	w.write(t, authorizedLine(bob, `role="admin"`))
	if err := os.Chtimes(w.path(), before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(w.path())
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() != before.Size() || !after.ModTime().Equal(before.ModTime()) || !os.SameFile(before, after) {
		t.Fatalf("the rewrite is not a same-size, same-time rewrite: %d %s -> %d %s", before.Size(), before.ModTime(), after.Size(), after.ModTime())
	}
	w.admitted(t, bob, true, "bob, after a same-size rewrite")
	w.admitted(t, alice, false, "alice, after a same-size rewrite removed her")
}

// A key on several lines: the first line that admits the connection counts,
// as in OpenSSH, and the log says the key is repeated.
func TestAuthorizedKeysDuplicatedLines(t *testing.T) {
	w := startKeysWorld(t)
	carol, dave := signer(t), signer(t)
	w.write(t,
		authorizedLine(carol, `role="viewer"`),
		authorizedLine(carol, `role="admin"`),
		authorizedLine(dave, `from="10.0.0.0/8",role="admin"`), // not from loopback
		authorizedLine(dave, `role="viewer"`),
	)
	if got := w.screen(t, carol, "viewer"); strings.Contains(got, "admin") {
		t.Errorf("carol's first line says viewer, her second admin: the session shows admin:\n%s", got)
	}
	if got := w.screen(t, dave, "viewer"); strings.Contains(got, "admin") {
		t.Errorf("dave's admin line admits only 10/8: a loopback session shows admin:\n%s", got)
	}
	if !strings.Contains(w.logs.String(), "a key is on several lines") {
		t.Errorf("no warning about the repeated key:\n%s", w.logs)
	}

	// Swapped, the first line wins again: carol is an admin.
	w.write(t, authorizedLine(carol, `role="admin"`), authorizedLine(carol, `role="viewer"`))
	w.screen(t, carol, "admin")
}

// The OpenSSH options a line can carry, each through a real client.
func TestAuthorizedKeysOptions(t *testing.T) {
	w := startKeysWorld(t)
	expired, current, shell, restricted, restrictedPTY, noPTY, quiet, env, unknown := signer(t), signer(t), signer(t), signer(t), signer(t), signer(t), signer(t), signer(t), signer(t)
	utc := func(d time.Duration) string { return time.Now().UTC().Add(d).Format("200601021504") + "Z" }
	w.write(t,
		authorizedLine(expired, `expiry-time="`+utc(-2*time.Minute)+`",role="admin"`),
		authorizedLine(current, `expiry-time="`+utc(time.Hour)+`",role="admin"`),
		authorizedLine(shell, `command="/bin/sh",role="admin"`),
		authorizedLine(restricted, `restrict,role="admin"`),
		authorizedLine(restrictedPTY, `restrict,pty,role="admin"`),
		authorizedLine(noPTY, `no-pty`),
		authorizedLine(quiet, `no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc`),
		authorizedLine(env, `environment="PATH=/tmp"`),
		authorizedLine(unknown, `frobnicate`),
	)
	w.admitted(t, expired, false, "expiry-time in the past")
	if !strings.Contains(w.logs.String(), "expired at") {
		t.Errorf("the log does not say the key expired:\n%s", w.logs)
	}
	w.screen(t, current, "admin")
	w.admitted(t, shell, false, "command=")
	if !strings.Contains(w.logs.String(), "command= is not supported: Clank is not a shell") {
		t.Errorf("the log does not say why command= was refused:\n%s", w.logs)
	}
	w.admitted(t, env, false, "environment=")
	w.admitted(t, unknown, false, "an unknown option")
	const noTerminal = "may not open a terminal (no-pty or restrict in authorized_keys)"
	for name, k := range map[string]gossh.Signer{"restrict": restricted, "no-pty": noPTY} {
		if got := w.screen(t, k, noTerminal); !strings.Contains(got, noTerminal) || strings.Contains(got, "testhost") {
			t.Errorf("%s: the session showed:\n%s", name, got)
		}
	}
	w.screen(t, restrictedPTY, "admin")
	w.screen(t, quiet, "viewer")
}
