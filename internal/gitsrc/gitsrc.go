// Package gitsrc reads Docker build contexts out of git repositories with
// the system's git: a commit's tree as a tar stream (`git archive`), for
// `clank deploy --git` on a local repository and for the bare repositories
// that `git push` to Clank's SSH server lands in. Git itself speaks every
// protocol and reads every object format; this package only runs it.
package gitsrc

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
)

// Failure is a git command that ran and failed; Msg is the first line of
// what it said, without "fatal: ".
type Failure struct {
	Args []string
	Msg  string
}

func (e *Failure) Error() string { return "git " + strings.Join(e.Args, " ") + ": " + e.Msg }

// Git runs git in the repository dir (a work tree or a bare repository),
// with env added to this process's environment, and returns its trimmed
// output. A git that ran and failed is a *Failure.
func Git(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
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
		return "", &Failure{Args: args, Msg: msg}
	case err != nil:
		return "", fmt.Errorf("the git command: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// HasDockerfile reports whether commit holds a Dockerfile in path, a
// directory of the repository relative to dir ("./" for dir itself: the
// root of a bare repository).
func HasDockerfile(ctx context.Context, dir string, env []string, commit, path string) bool {
	kind, err := Git(ctx, dir, env, "cat-file", "-t", commit+":"+path+"Dockerfile")
	return err == nil && kind == "blob"
}

// archive is a running `git archive`: its output, and at the end its exit
// status as the read error, so that a failed archive is never taken for a
// short one.
type archive struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr bytes.Buffer

	once    sync.Once
	waitErr error
}

// Archive streams `git archive --format=tar` of commit in the repository
// dir (the directory dir is in the commit, for a work tree inside it): the
// build context. The caller closes it; an archive that fails ends the stream
// with its error, so a reader sees a cut-off stream, never a short one.
func Archive(ctx context.Context, dir string, env []string, commit string) (io.ReadCloser, error) {
	a := &archive{cmd: exec.CommandContext(ctx, "git", "-C", dir, "archive", "--format=tar", commit)}
	if len(env) > 0 {
		a.cmd.Env = append(os.Environ(), env...)
	}
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
