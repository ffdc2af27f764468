package ssh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"
	"charm.land/wish/v2/bubbletea"
	gossh "golang.org/x/crypto/ssh"

	"github.com/clank-dev/clank/ui"
)

// DefaultAddr is where the SSH dashboard listens unless told otherwise.
const DefaultAddr = "127.0.0.1:2222"

// handshakeTimeout bounds how long a connection may take to authenticate.
const handshakeTimeout = 30 * time.Second

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = ssh.ErrServerClosed

// Permission extensions set by the public-key callback on the Permissions of
// the key it accepts; x/crypto hands the session the ones of the key that
// signed.
const (
	extRole        = "clank-role"
	extFingerprint = "clank-fingerprint"
	extNoPTY       = "clank-no-pty" // the key's line says no-pty or restrict
	// extNoTouch is OpenSSH's own name, which x/crypto reads: a security
	// key's signature need not assert a touch.
	extNoTouch = "no-touch-required"
)

// ServerOptions configure the SSH dashboard.
type ServerOptions struct {
	// Addr is the TCP address the server is for (DefaultAddr if empty): the
	// caller listens on it and hands the listener to Serve.
	Addr string
	// DataDir holds the host key (generated on first start, then kept) and
	// authorized_keys.
	DataDir string
	// Backend is what every session's dashboard talks to; each session's
	// calls carry its identity and role (api.WithCaller), which the daemon
	// checks.
	Backend ui.Backend
	// Git serves git push and fetch on the services' repositories, under
	// <DataDir>/git; nil turns git over SSH off.
	Git GitBackend
	// Host names this machine in the dashboard's header.
	Host string
	// Logger receives connection and session logs (slog.Default if nil).
	Logger *slog.Logger
}

// Server is the SSH dashboard: one dashboard program per session.
type Server struct {
	opts   ServerOptions
	log    *slog.Logger
	keys   *authorizedKeys
	srv    *ssh.Server
	ctx    context.Context // ends every session's program on Shutdown
	cancel context.CancelFunc
	events *eventFeed
	stats  *statsShare // the sessions' one read of the daemon's stats (session.go)
	conns  connSet
	addr   atomic.Pointer[string]
}

// NewServer prepares the server: it loads (or creates) the host key.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("ssh dashboard: no data dir")
	}
	if opts.Backend == nil {
		return nil, errors.New("ssh dashboard: no backend")
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	signer, err := loadOrCreateHostKey(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("ssh dashboard: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:   opts,
		log:    log,
		keys:   &authorizedKeys{path: filepath.Join(opts.DataDir, AuthorizedKeysFile), log: log},
		ctx:    ctx,
		cancel: cancel,
		events: &eventFeed{ctx: ctx, backend: opts.Backend},
		stats:  &statsShare{},
	}
	s.srv, err = wish.NewServer(
		wish.WithAddress(opts.Addr),
		func(srv *ssh.Server) error {
			srv.AddHostKey(signer)
			srv.HandshakeTimeout = handshakeTimeout
			srv.ConnCallback = s.conns.admit
			return nil
		},
		// Public keys only: no password or keyboard-interactive handler is
		// set, so x/crypto offers neither.
		wish.WithPublicKeyAuth(s.authorize),
		wish.WithMiddleware(
			bubbletea.MiddlewareWithProgramHandler(s.program),
			s.admit, // runs first
		),
	)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("ssh dashboard: %w", err)
	}
	return s, nil
}

// authorize is the public-key callback. x/crypto calls it for keys that are
// only offered too, so it must not remember anything: what it grants goes
// into this attempt's Permissions, which x/crypto keeps only for a key whose
// signature then verifies.
func (s *Server) authorize(ctx ssh.Context, key ssh.PublicKey) bool {
	g, ok := s.keys.lookup(key, ctx.RemoteAddr(), time.Now())
	if !ok {
		return false
	}
	perms := ctx.Permissions()
	if perms.Extensions == nil {
		perms.Extensions = map[string]string{}
	}
	perms.Extensions[extRole] = string(g.role)
	perms.Extensions[extFingerprint] = gossh.FingerprintSHA256(key)
	if g.noPTY {
		perms.Extensions[extNoPTY] = ""
	}
	if g.noTouch {
		perms.Extensions[extNoTouch] = ""
	}
	if g.sourceAddress != "" {
		if perms.CriticalOptions == nil {
			perms.CriticalOptions = map[string]string{}
		}
		perms.CriticalOptions["source-address"] = g.sourceAddress
	}
	return true
}

// identity is who a session is, from the key that authenticated it.
type identity struct {
	user, fingerprint string
	role              ui.Role
}

// actor is what the actions of this session record as triggered_by.
func (id identity) actor() string { return id.user + " (" + id.fingerprint + ")" }

// identityOf reads the session's identity from the authenticated key's
// Permissions, and checks it against the key the session reports.
func identityOf(sess ssh.Session) (identity, error) {
	ext := sess.Permissions().Extensions
	role, fp := ext[extRole], ext[extFingerprint]
	if role == "" || fp == "" {
		return identity{}, errors.New("no role granted")
	}
	pk := sess.PublicKey()
	if pk == nil || gossh.FingerprintSHA256(pk) != fp {
		return identity{}, errors.New("granted role does not belong to the session's key")
	}
	return identity{user: sess.User(), fingerprint: fp, role: ui.ParseRole(role)}, nil
}

// admit lets a session through to the dashboard only with an identity and a
// terminal.
func (s *Server) admit(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		id, err := identityOf(sess)
		if err != nil {
			s.log.Warn("ssh: session refused", "remote", sess.RemoteAddr().String(), "err", err)
			wish.Fatalln(sess, "clank: not authorized")
			return
		}
		if sess.RawCommand() != "" {
			s.serveGit(sess, id) // git push and fetch ask for a command
			return
		}
		if _, noPTY := sess.Permissions().Extensions[extNoPTY]; noPTY {
			s.log.Warn("ssh: session refused: the key's authorized_keys line forbids a terminal", "user", id.user, "fingerprint", id.fingerprint)
			wish.Fatalln(sess, "clank: this key may not open a terminal (no-pty or restrict in authorized_keys), and the dashboard needs one")
			return
		}
		if _, _, ok := sess.Pty(); !ok {
			wish.Fatalln(sess, "clank: the dashboard needs a terminal: connect with ssh -t")
			return
		}
		s.log.Info("ssh: dashboard session", "user", id.user, "fingerprint", id.fingerprint,
			"role", id.role, "remote", sess.RemoteAddr().String())
		next(sess)
		s.log.Info("ssh: dashboard session ended", "user", id.user, "fingerprint", id.fingerprint)
		if s.ctx.Err() != nil {
			// Shutting down: the dashboard has quit and restored the
			// terminal; close the connection rather than wait for the client.
			if c, ok := sess.Context().Value(ssh.ContextKeyConn).(gossh.Conn); ok {
				_ = c.Close()
			}
		}
	}
}

// program builds the session's dashboard. Its context ends with the session
// or with Shutdown, whichever comes first; on Shutdown the program quits
// (wish quits it when the session ends).
func (s *Server) program(sess ssh.Session) *tea.Program {
	id, err := identityOf(sess)
	if err != nil {
		return nil // admit already refused it
	}
	ctx, cancel := context.WithCancel(s.ctx)
	context.AfterFunc(sess.Context(), cancel)
	pty, _, _ := sess.Pty()
	opts := ui.Options{
		Context: ctx,
		Role:    id.role,
		Actor:   id.actor(),
		Host:    s.opts.Host,
		Width:   pty.Window.Width,
		Height:  pty.Window.Height,
	}
	p := ui.NewProgram(s.sessionBackend(id, sess.PublicKey(), sess.RemoteAddr()), opts, bubbletea.MakeOptions(sess)...)
	context.AfterFunc(ctx, p.Quit)
	return p
}

// Serve serves connections from l until Shutdown; it then returns
// ErrServerClosed.
func (s *Server) Serve(l net.Listener) error {
	addr := l.Addr().String()
	s.addr.Store(&addr)
	return s.srv.Serve(l)
}

// Addr is the address the server listens on once serving (the configured
// one before).
func (s *Server) Addr() string {
	if a := s.addr.Load(); a != nil {
		return *a
	}
	return s.opts.Addr
}

// Shutdown stops admitting connections, ends every session's dashboard and
// waits for the connections to close, closing them when ctx ends first; then
// it stops listening. It waits on the server's own count of connections
// (connSet), not with the library's Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	var err error
	select {
	case <-s.conns.close():
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.conns.closeAll()
	_ = s.srv.Close()
	return err
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.cancel()
	s.conns.close()
	s.conns.closeAll()
	return s.srv.Close()
}
