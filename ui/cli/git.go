package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/clank-dev/clank/api"
)

// buildFromGit builds the Dockerfile of a git commit (spec is PATH[#REF],
// REF defaulting to HEAD) in the daemon for service, streaming the build's
// output to out, and returns the image to deploy: local-only, or pushed to the
// Clank registry with push.
func buildFromGit(ctx context.Context, c *api.Client, service, spec string, push bool, out io.Writer) (string, error) {
	commit, tar, err := gitContext(ctx, spec)
	if err != nil {
		return "", err
	}
	defer tar.Close()
	fmt.Fprintf(out, "build of %s from %s at %s\n", service, spec, commit[:min(len(commit), 12)])
	// A git archive that fails ends the stream with its error, so the daemon
	// sees a cut-off upload rather than a short context: no need to check Close.
	return c.Build(ctx, service, commit, push, tar, out)
}

// gitContext resolves spec (PATH[#REF], REF defaulting to HEAD) to a commit
// and streams `git archive` of it: the build context, which is PATH's
// directory in that commit (the repository's root, or a directory inside it).
// A spec that names an existing directory as a whole is a PATH without REF, so
// a '#' in a path works. Bad input (no repository, a REF that is no commit, no
// Dockerfile) is a usage error of one line. The caller closes tar.
func gitContext(ctx context.Context, spec string) (commit string, tar io.ReadCloser, err error) {
	path, ref := spec, "HEAD"
	if fi, err := os.Stat(spec); err != nil || !fi.IsDir() {
		if p, r, ok := strings.Cut(spec, "#"); ok {
			path, ref = p, r
		}
	}
	switch {
	case path == "":
		return "", nil, usagef("--git %q: no repository path: use --git PATH[#REF]", spec)
	case ref == "" || strings.HasPrefix(ref, "-"):
		return "", nil, usagef("--git %q: invalid ref %q", spec, ref)
	}
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		return "", nil, usagef("--git %s: no such directory", path)
	}
	if _, err := git(ctx, path, "rev-parse", "--git-dir"); err != nil {
		var gf *gitFailure
		if !errors.As(err, &gf) {
			return "", nil, err
		}
		return "", nil, usagef("--git %s: %s", path, gf.msg)
	}
	commit, err = git(ctx, path, "rev-parse", "--verify", "--quiet", "--end-of-options", ref+"^{commit}")
	if err != nil {
		return "", nil, usagef("--git %s: %q is not a commit in %s", spec, ref, path)
	}
	// "./" is relative to PATH: a directory inside a repository is the
	// context, as `git archive` run there makes it.
	if kind, err := git(ctx, path, "cat-file", "-t", commit+":./Dockerfile"); err != nil || kind != "blob" {
		return "", nil, usagef("--git %s: commit %s has no Dockerfile in %s", spec, commit[:min(len(commit), 12)], path)
	}
	tar, err = gitArchive(ctx, path, commit)
	if err != nil {
		return "", nil, err
	}
	return commit, tar, nil
}

// gitFailure is a git command that ran and failed; msg is the first line of
// what it said, without "fatal: ".
type gitFailure struct {
	args []string
	msg  string
}

func (e *gitFailure) Error() string { return "git " + strings.Join(e.args, " ") + ": " + e.msg }

// git runs a git command in the directory dir and returns its trimmed output.
func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		msg, _, _ := strings.Cut(strings.TrimSpace(stderr.String()), "\n")
		if msg = strings.TrimPrefix(msg, "fatal: "); msg == "" {
			msg = exit.String()
		}
		return "", &gitFailure{args: args, msg: msg}
	case err != nil:
		return "", fmt.Errorf("--git needs the git command: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// archive is the running `git archive`: its output, and at the end its exit
// status as the read error, so that a failed archive is never taken for a
// short one.
type archive struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr bytes.Buffer

	once    sync.Once
	waitErr error
}

func gitArchive(ctx context.Context, dir, commit string) (*archive, error) {
	a := &archive{cmd: exec.CommandContext(ctx, "git", "-C", dir, "archive", "--format=tar", commit)}
	a.cmd.Stderr = &a.stderr
	out, err := a.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("git archive %s: %w", commit, err)
	}
	a.out = out
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("git archive %s: %w", commit, err)
	}
	return a, nil
}

func (a *archive) Read(p []byte) (int, error) {
	n, err := a.out.Read(p)
	if errors.Is(err, io.EOF) {
		if werr := a.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// Close stops git if it is still writing and reports how it ended.
func (a *archive) Close() error {
	a.out.Close()
	return a.wait()
}

func (a *archive) wait() error {
	a.once.Do(func() {
		if err := a.cmd.Wait(); err != nil {
			a.waitErr = fmt.Errorf("git archive: %v: %s", err, strings.TrimSpace(a.stderr.String()))
		}
	})
	return a.waitErr
}
