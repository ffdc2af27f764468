package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// lockFile is the data dir's lock: the daemon that holds it owns the store,
// the containers labelled with its instance id, and the default socket.
const lockFile = "clank.lock"

// ErrAlreadyRunning: another daemon holds the data dir or answers on the socket.
var ErrAlreadyRunning = errors.New("a Clank daemon is already running")

// lockDataDir takes the data dir's lock for as long as the returned file is
// open (the kernel drops it when the process ends, however it ends). A second
// daemon on the same data dir is refused here, before it touches the socket
// or the store, whatever --socket it was given.
func lockDataDir(dataDir string) (*os.File, error) {
	path := filepath.Join(dataDir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock the data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another process"
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
					holder = "process " + strconv.Itoa(pid)
				}
			}
			return nil, fmt.Errorf("%w: %s uses the data dir %s", ErrAlreadyRunning, holder, dataDir)
		}
		return nil, fmt.Errorf("lock the data dir %s: %w", dataDir, err)
	}
	// The pid is only for the message above; the lock is what counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// listenSocket listens on the API socket (mode 0600). A socket file that
// nothing answers on is stale and replaced; a live one means another daemon;
// anything that is not a socket is not ours to remove, and is refused.
func listenSocket(ctx context.Context, path string) (net.Listener, error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("API socket %s: %w", path, err)
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("API socket %s: the path exists and is not a socket (%s): refusing to replace it; choose another --socket", path, describeMode(fi.Mode()))
	default:
		var dialer net.Dialer
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := dialer.DialContext(dctx, "unix", path)
		cancel()
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("%w: one answers on %s", ErrAlreadyRunning, path)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("API socket %s: remove the stale socket: %w", path, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	old := syscallUmask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscallUmask(old)
	if err != nil {
		return nil, fmt.Errorf("API socket %s: %w", path, err)
	}
	// Close removes the file only while it is still the one made here.
	ln.SetUnlinkOnClose(false)
	own := &ownSocket{UnixListener: ln, path: path}
	if own.made, err = os.Lstat(path); err != nil {
		ln.Close()
		return nil, fmt.Errorf("API socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		own.Close()
		return nil, err
	}
	return own, nil
}

// ownSocket is the daemon's listening socket; closing it removes the socket
// file only if it is still the file this daemon made.
type ownSocket struct {
	*net.UnixListener
	path string
	made fs.FileInfo
}

func (s *ownSocket) Close() error {
	err := s.UnixListener.Close()
	if fi, serr := os.Lstat(s.path); serr == nil && os.SameFile(fi, s.made) {
		os.Remove(s.path)
	}
	return err
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m.IsRegular():
		return "a regular file"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "mode " + m.String()
}
