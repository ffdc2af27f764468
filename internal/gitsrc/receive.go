package gitsrc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// ZeroID is the object id git gives the old side of a new ref and the new
// side of a deleted one.
const ZeroID = "0000000000000000000000000000000000000000"

// RefUpdate is one ref a push moves.
type RefUpdate struct {
	Old, New, Ref string
}

// Push is what a push's pre-receive hook hands over: the ref updates, and
// where git keeps the pushed objects until it accepts the push (its
// quarantine): git commands about the pushed commits must look there too.
type Push struct {
	Updates             []RefUpdate
	ObjectDir           string
	AlternateObjectDirs string
}

// Env is what a git command run on the repository needs to see the pushed
// objects while the push waits for its answer.
func (p Push) Env() []string {
	return []string{"GIT_OBJECT_DIRECTORY=" + p.ObjectDir, "GIT_ALTERNATE_OBJECT_DIRECTORIES=" + p.AlternateObjectDirs}
}

// CheckObjectDirs makes sure the push's object directories are inside the
// repository dir's objects (the quarantine git made for it), so that a push
// names no other place on the machine.
func (p Push) CheckObjectDirs(dir string) error {
	objects, err := filepath.Abs(filepath.Join(dir, "objects"))
	if err != nil {
		return err
	}
	for _, d := range append([]string{p.ObjectDir}, filepath.SplitList(p.AlternateObjectDirs)...) {
		if rel, err := filepath.Rel(objects, d); err != nil || !filepath.IsAbs(d) || !filepath.IsLocal(rel) {
			return fmt.Errorf("object directory %q is not in %s", d, objects)
		}
	}
	return nil
}

// ReceivePack runs git-receive-pack on the bare repository dir (made by
// EnsureBare), speaking git's protocol over stdin and stdout; env adds to
// its environment (GIT_PROTOCOL). Once the pushed objects are in, before any
// ref moves, the pre-receive hook hands the push to accept. What accept
// writes to out reaches the pusher as it is written, as git's "remote:"
// lines; an error rejects the whole push, no ref moving, its text the last
// line. When ctx ends (the pusher went away) receive-pack and the hook are
// killed, and no ref moves. It returns receive-pack's exit status.
func ReceivePack(ctx context.Context, dir string, env []string, stdin io.Reader, stdout, stderr io.Writer,
	accept func(ctx context.Context, p Push, out io.Writer) error) (int, error) {
	fifos, err := os.MkdirTemp("", "clank-push-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(fifos)
	in, out := filepath.Join(fifos, "in"), filepath.Join(fifos, "out")
	for _, f := range []string{in, out} {
		if err := syscall.Mkfifo(f, 0o600); err != nil {
			return 0, fmt.Errorf("push relay: %w", err)
		}
	}
	// Opened read-write, neither end ever waits for the other to open, and
	// closing them wakes whatever waits on them.
	inF, err := os.OpenFile(in, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("push relay: %w", err)
	}
	defer inF.Close()
	outF, err := os.OpenFile(out, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("push relay: %w", err)
	}
	defer outF.Close()

	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	// However receive-pack ends, closing the FIFOs wakes a relay that waits
	// for a hook that never ran, or for a hook that is gone.
	defer outF.Close()
	defer inF.Close()
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		p, err := readPush(inF)
		if err != nil {
			return // receive-pack ended without running the hook
		}
		w := &hookWriter{f: outF}
		status := 0
		if err := accept(hctx, p, w); err != nil {
			w.flush()
			w.line("clank: " + strings.TrimPrefix(err.Error(), "clank: "))
			status = 1
		}
		w.flush()
		fmt.Fprintf(outF, "exit %d\n", status)
	}()
	return run(ctx, exec.Command("git", "receive-pack", dir), append(env, "CLANK_PUSH_DIR="+fifos), stdin, stdout, stderr)
}

// UploadPack runs git-upload-pack on the bare repository dir (a fetch or a
// clone), speaking git's protocol over stdin and stdout, until it ends or ctx
// does. It returns upload-pack's exit status.
func UploadPack(ctx context.Context, dir string, env []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		return 0, errors.New("nothing was pushed here yet")
	}
	return run(ctx, exec.Command("git", "upload-pack", dir), env, stdin, stdout, stderr)
}

// run runs a git server command (upload-pack, receive-pack) on a client's
// streams, in a process group of its own that is killed, hooks and all, when
// ctx ends. It returns the command's exit status.
func run(ctx context.Context, cmd *exec.Cmd, env []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	pipe, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("git %s: %w", cmd.Args[1], err)
	}
	// The client's bytes are copied by hand: exec would wait for a copy that
	// only ends when the client closes its side.
	go func() {
		io.Copy(pipe, stdin)
		pipe.Close()
	}()
	stop := context.AfterFunc(ctx, func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer stop()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		return 0, fmt.Errorf("git %s: the client went away", cmd.Args[1])
	case errors.As(err, &exit):
		return exit.ExitCode(), nil
	case err != nil:
		return 0, fmt.Errorf("git %s: %w", cmd.Args[1], err)
	}
	return 0, nil
}

// readPush reads what the hook hands over: "objects DIR", "alternates
// DIRS", the "old new ref" lines, then "end".
func readPush(r io.Reader) (Push, error) {
	var p Push
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "end":
			return p, nil
		case strings.HasPrefix(line, "objects "):
			p.ObjectDir = strings.TrimPrefix(line, "objects ")
		case strings.HasPrefix(line, "alternates "):
			p.AlternateObjectDirs = strings.TrimPrefix(line, "alternates ")
		default:
			f := strings.Fields(line)
			if len(f) != 3 {
				return p, fmt.Errorf("push relay: unexpected line %q", line)
			}
			p.Updates = append(p.Updates, RefUpdate{Old: f[0], New: f[1], Ref: f[2]})
		}
	}
	if err := sc.Err(); err != nil {
		return p, err
	}
	return p, io.ErrUnexpectedEOF
}

// hookWriter writes to the hook line by line ("say LINE"), so that a line
// of output never reads as the hook's exit.
type hookWriter struct {
	f       io.Writer
	partial []byte
}

func (w *hookWriter) Write(b []byte) (int, error) {
	w.partial = append(w.partial, b...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		if err := w.line(string(bytes.TrimSuffix(w.partial[:i], []byte("\r")))); err != nil {
			return 0, err
		}
		w.partial = w.partial[i+1:]
	}
}

func (w *hookWriter) line(s string) error {
	_, err := fmt.Fprintf(w.f, "say %s\n", s)
	return err
}

func (w *hookWriter) flush() {
	if len(w.partial) > 0 {
		w.line(string(w.partial))
		w.partial = nil
	}
}
