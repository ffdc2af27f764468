package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/internal/testdocker"
)

// serveArgs run `clank serve` on loopback ports nothing else uses.
var serveArgs = []string{"serve", "--http-addr", "127.0.0.1:0", "--ssh-addr", "", "--registry-addr", ""}

// refusedServe runs a `clank serve` that should be refused: it must end on
// its own, well within the bound (exit -1 means it started and was killed).
func refusedServe(t *testing.T, dataDir string, args ...string) (string, string, int) {
	t.Helper()
	return runClankWithin(t, 30*time.Second, dataDir, append(slices.Clone(serveArgs), args...)...)
}

// TestSecondServeIsRefusedAndTheFirstKeepsItsSocket: a second `clank serve`
// on the same data dir, or on the same socket from another data dir, is
// refused, and leaves the first daemon's socket, store and containers alone:
// the first keeps answering the CLI and serving its service.
func TestSecondServeIsRefusedAndTheFirstKeepsItsSocket(t *testing.T) {
	d := startDaemon(t, "", "127.0.0.1:0")
	rt := testdocker.Require(t)
	d.ok("service", "create", "web", "--image", testdocker.SampleImage(t, rt, "v1"), "--port", "8080", "--health-path", "/healthz")
	d.ok("deploy", "--service", "web")
	sock := filepath.Join(d.dataDir, "clank.sock")
	before, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	otherSock := filepath.Join(t.TempDir(), "other.sock")

	for _, tc := range []struct {
		name    string
		dataDir string
		args    []string
		msg     string
	}{
		{"same data dir", d.dataDir, nil, "uses the data dir " + d.dataDir},
		{"same data dir, another socket", d.dataDir, []string{"--socket", otherSock}, "uses the data dir " + d.dataDir},
		{"another data dir, the same socket", t.TempDir(), []string{"--socket", sock}, "one answers on " + sock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := refusedServe(t, tc.dataDir, tc.args...)
			after, err := os.Lstat(sock)
			if err != nil || !os.SameFile(before, after) {
				t.Fatalf("the first daemon's socket after a second serve: %v (same file: %v)", err, err == nil && os.SameFile(before, after))
			}
			if code != 1 || !strings.Contains(errOut, "already running") || !strings.Contains(errOut, tc.msg) {
				t.Fatalf("second clank serve: exit %d, stderr %q (want exit 1 and %q), stdout %q", code, errOut, tc.msg, out)
			}
			if lines := strings.Count(strings.TrimSpace(errOut), "\n"); lines != 0 {
				t.Errorf("the refusal is %d lines: %q", lines+1, errOut)
			}
			if _, err := os.Lstat(otherSock); !os.IsNotExist(err) {
				t.Errorf("the refused daemon made its socket %s: %v", otherSock, err)
			}
			if out := d.ok("services"); !strings.Contains(out, "web") || !strings.Contains(out, "ACTIVE") {
				t.Fatalf("the first daemon after a refused second serve:\n%s", out)
			}
			if body := d.mustGet("web.localhost", "/"); body != "hello from v1" {
				t.Fatalf("web answers %q after a refused second serve", body)
			}
		})
	}

	// Stopped, the first daemon removes its own socket and frees the data dir.
	d.stop()
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket after the daemon stopped: %v", err)
	}
	d = startDaemon(t, d.dataDir, "127.0.0.1:0")
	if body := d.mustGet("web.localhost", "/"); body != "hello from v1" {
		t.Fatalf("web answers %q after a restart", body)
	}
}

// TestSocketPathThatIsNotASocketIsLeftAlone: --socket naming a file or a
// directory is refused with the reason, and the path is left as it was.
func TestSocketPathThatIsNotASocketIsLeftAlone(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(file, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, what string }{{file, "a regular file"}, {sub, "a directory"}} {
		dataDir := t.TempDir()
		out, errOut, code := refusedServe(t, dataDir, "--socket", tc.path)
		if code != 1 || !strings.Contains(errOut, "is not a socket ("+tc.what+")") || !strings.Contains(errOut, tc.path) {
			t.Errorf("clank serve --socket %s: exit %d, stderr %q, stdout %q", tc.path, code, errOut, out)
		}
		if _, err := os.Stat(filepath.Join(dataDir, "clank.db")); !os.IsNotExist(err) {
			t.Errorf("the refused daemon opened a store: %v", err)
		}
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious\n" {
		t.Fatalf("the file passed as --socket: %q %v", b, err)
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Fatalf("the directory passed as --socket: %v", err)
	}
}
