package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"

	"charm.land/ssh"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/gitsrc"
	"github.com/clank-dev/clank/ui"
)

// GitBackend is what git over SSH needs of Clank (api.Client implements it):
// the service a repository belongs to, and a push handed over before any ref
// moves. Its calls carry the session's identity and role, which the daemon
// checks.
type GitBackend interface {
	Service(ctx context.Context, name string, showEnv bool) (api.Service, error)
	ReceivePush(ctx context.Context, service string, p api.GitPush, out io.Writer) (string, error)
}

// protocolRe is what GIT_PROTOCOL may say ("version=2"): the one variable a
// git client sends that the server's git is given.
var protocolRe = regexp.MustCompile(`^version=[0-9]+(:[a-z0-9=:._-]*)?$`)

// serveGit runs a git command a client asked for (git push, fetch and clone
// ask for git-receive-pack and git-upload-pack): the system's git speaks the
// protocol on the service's bare repository, and a push is handed to Clank
// before any ref moves. Pushing needs an admin's key; fetching any known key.
func (s *Server) serveGit(sess ssh.Session, id identity) {
	fail := func(format string, args ...any) {
		fmt.Fprintf(sess.Stderr(), "clank: "+format+"\n", args...)
		sess.Exit(1)
	}
	cmd := sess.Command()
	if len(cmd) != 2 || (cmd[0] != "git-receive-pack" && cmd[0] != "git-upload-pack") {
		fail("this server runs the dashboard (ssh -t) and git push and fetch; not %q", sess.RawCommand())
		return
	}
	verb := cmd[0]
	name, ok := repoService(cmd[1])
	if !ok {
		fail("%q is no repository here: push to ssh://git@HOST:PORT/SERVICE", cmd[1])
		return
	}
	if s.opts.Git == nil {
		fail("git over SSH is off on this server")
		return
	}
	if verb == "git-receive-pack" && id.role != ui.RoleAdmin {
		s.log.Warn("ssh: git push refused: not an admin", "user", id.user, "fingerprint", id.fingerprint, "service", name)
		fail("%s is a %s: only an admin's key may push", id.actor(), id.role)
		return
	}
	ctx := api.WithCaller(sess.Context(), s.sessionBackend(id, sess.PublicKey(), sess.RemoteAddr()).caller())
	if _, err := s.opts.Git.Service(ctx, name, false); err != nil {
		var re *api.RemoteError
		if errors.As(err, &re) && re.Code == "not_found" {
			fail("no service named %q: create it first (clank service create %s --image IMAGE --port N)", name, name)
			return
		}
		fail("%v", err)
		return
	}
	dir := gitsrc.Dir(s.opts.DataDir, name)
	var env []string
	for _, kv := range sess.Environ() {
		if v, ok := strings.CutPrefix(kv, "GIT_PROTOCOL="); ok && protocolRe.MatchString(v) {
			env = append(env, kv)
		}
	}
	s.log.Info("ssh: git", "command", verb, "service", name, "user", id.user, "fingerprint", id.fingerprint)
	var code int
	var err error
	if verb == "git-upload-pack" {
		code, err = gitsrc.UploadPack(ctx, dir, env, sess, sess, sess.Stderr())
	} else if err = gitsrc.EnsureBare(ctx, dir); err == nil {
		code, err = gitsrc.ReceivePack(ctx, dir, env, sess, sess, sess.Stderr(),
			func(ctx context.Context, p gitsrc.Push, out io.Writer) error {
				_, err := s.opts.Git.ReceivePush(ctx, name, apiPush(p), out)
				return err
			})
	}
	if err != nil {
		s.log.Error("ssh: git", "command", verb, "service", name, "err", err)
		fail("%v", err)
		return
	}
	sess.Exit(code)
}

// repoService is the service a repository path names: "/web", "web",
// "/web.git" or "web.git", and nothing else (no directories, no "..").
func repoService(path string) (string, bool) {
	name := strings.TrimSuffix(strings.TrimPrefix(path, "/"), ".git")
	return name, engine.ValidateServiceName(name) == nil
}

func apiPush(p gitsrc.Push) api.GitPush {
	out := api.GitPush{ObjectDir: p.ObjectDir, AlternateObjectDirs: p.AlternateObjectDirs}
	for _, u := range p.Updates {
		out.Updates = append(out.Updates, api.RefUpdate{Old: u.Old, New: u.New, Ref: u.Ref})
	}
	return out
}
