package e2e

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/clank-dev/clank/internal/testdocker"
)

// nobody is the uid and gid the test runs a stranger's CLI as.
const nobody = 65534

// A user other than the socket's owner, on a socket someone made world
// writable: the kernel names the peer (SO_PEERCRED), the daemon makes it a
// viewer, and the real CLI exits 1 with the daemon's refusal while reads
// work. Running a process as another user needs root.
func TestAnotherUserOnTheSocketIsAViewer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running the CLI as another user needs root")
	}
	rt := testdocker.Require(t)
	shared, err := os.MkdirTemp("", "clank-roles-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(shared) })
	if err := os.Chmod(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(shared, "clank.sock")
	d := startDaemonWith(t, "", "127.0.0.1:0", nil, "--socket", socket)
	d.ok("--socket", socket, "service", "create", "web", "--image", testdocker.SampleImage(t, rt, "v1"), "--port", "8080")
	if err := os.Chmod(socket, 0o666); err != nil { // what an operator might do
		t.Fatal(err)
	}
	bin := filepath.Join(shared, "clank")
	copyFile(t, clankBin, bin, 0o755)

	asNobody := func(args ...string) (string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"--socket", socket}, args...)...)
		cmd.Env = []string{"HOME=" + shared, "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("clank %v as nobody: %v", args, err)
		}
		return out.String(), code
	}

	if out, code := asNobody("services"); code != 0 || !strings.Contains(out, "web") {
		t.Fatalf("clank services as nobody: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"deploy", "--service", "web"},
		{"service", "create", "evil", "--image", "x", "--port", "80"},
		{"env", "set", "--service", "web", "K=V"},
		{"prune"},
		{"unfreeze", "--service", "web"},
		{"services", "--show-env"},
	} {
		out, code := asNobody(args...)
		if code != 1 || !strings.Contains(out, "forbidden: nobody (cli) is a viewer") {
			t.Errorf("clank %s as nobody: exit %d\n%s\nwant exit 1 and the daemon's refusal", strings.Join(args, " "), code, out)
		}
	}
	// Nothing happened: one service, never deployed, no K.
	out := d.ok("--socket", socket, "services", "-o", "json")
	if strings.Contains(out, "evil") || strings.Contains(out, `"K"`) || !strings.Contains(out, `"active_deployment_id": null`) {
		t.Fatalf("after the refused calls:\n%s", out)
	}
	if !strings.Contains(d.log.String(), "refused a viewer's call") {
		t.Errorf("the daemon's log does not record the refusals:\n%s", d.log)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}
