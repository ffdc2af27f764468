// Package e2e drives the real clank binary: a daemon on a temporary data
// dir, the CLI against it, real containers behind the edge router.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

var clankBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "clank-e2e-")
	if err != nil {
		panic(err)
	}
	clankBin = filepath.Join(dir, "clank")
	build := exec.Command("go", "build", "-o", clankBin, "github.com/clank-dev/clank")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build clank: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is a `clank serve` process.
type daemon struct {
	t       *testing.T
	dataDir string
	router  string      // host:port of the edge router
	regCh   chan string // the Clank registry's host:port, once printed
	cmd     *exec.Cmd
	log     *syncBuffer
	owner   string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	routerRe   = regexp.MustCompile(`edge router on http://(127\.0\.0\.1:\d+)`)
	registryRe = regexp.MustCompile(`^Clank registry on (127\.0\.0\.1:\d+) `)
)

// startDaemon runs `clank serve` on dataDir (a new one if ""), with the edge
// router on routerAddr ("127.0.0.1:0" for any port).
func startDaemon(t *testing.T, dataDir, routerAddr string) *daemon {
	t.Helper()
	return startDaemonWith(t, dataDir, routerAddr, nil)
}

// startDaemonWith is startDaemon with extra environment and `clank serve`
// arguments (a repeated flag's last value wins).
func startDaemonWith(t *testing.T, dataDir, routerAddr string, env []string, args ...string) *daemon {
	t.Helper()
	rt := testdocker.Require(t)
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	d := &daemon{t: t, dataDir: dataDir, log: &syncBuffer{}, regCh: make(chan string, 1)}
	d.cmd = exec.Command(clankBin, append([]string{"serve", "--http-addr", routerAddr, "--ssh-addr", "", "--registry-addr", ""}, args...)...)
	d.cmd.Env = append(append(os.Environ(), "CLANK_DATA_DIR="+dataDir), env...)
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stdout)
	found := make(chan string, 1)
	go func() {
		for lines.Scan() {
			d.log.Write(append(lines.Bytes(), '\n'))
			if m := routerRe.FindStringSubmatch(lines.Text()); m != nil {
				found <- m[1]
			}
			if m := registryRe.FindStringSubmatch(lines.Text()); m != nil {
				d.regCh <- m[1]
			}
		}
	}()
	select {
	case d.router = <-found:
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		t.Fatalf("clank serve did not start:\n%s", d.log)
	}
	// Once the daemon stopped, the images of its registry go: those the
	// test pushed and those the daemon pulled (by digest, with no tag).
	t.Cleanup(func() {
		select {
		case addr := <-d.regCh:
			testdocker.RemoveRegistryImages(t, rt, addr)
		default: // no registry
		}
	})
	t.Cleanup(func() { d.stop() })
	// Every container of this daemon goes when the test ends.
	d.owner = instanceID(t, dataDir)
	testdocker.Cleanup(t, rt, map[string]string{engine.LabelOwner: d.owner})
	return d
}

func (d *daemon) stop() {
	if d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
}

// kill9 kills the daemon the hard way.
func (d *daemon) kill9() {
	d.t.Helper()
	if err := d.cmd.Process.Kill(); err != nil {
		d.t.Fatal(err)
	}
	d.cmd.Wait()
}

// run runs a CLI command against the daemon and returns stdout, stderr and
// the exit code.
func (d *daemon) run(args ...string) (string, string, int) {
	d.t.Helper()
	return runClank(d.t, d.dataDir, args...)
}

func runClank(t *testing.T, dataDir string, args ...string) (string, string, int) {
	t.Helper()
	return runClankWithin(t, 2*time.Minute, dataDir, args...)
}

// runClankWithin is runClank for a command that must end within a bound (a
// daemon that should be refused; exit -1 if it had to be killed).
func runClankWithin(t *testing.T, within time.Duration, dataDir string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, clankBin, args...)
	cmd.Env = append(os.Environ(), "CLANK_DATA_DIR="+dataDir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("clank %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed.
func (d *daemon) ok(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.run(args...)
	if code != 0 {
		d.t.Fatalf("clank %s: exit %d\n%s%s\ndaemon log:\n%s", strings.Join(args, " "), code, out, errOut, d.log)
	}
	return out
}

// get sends a request for host through the edge router.
func (d *daemon) get(host, path string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.router+path, nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

func (d *daemon) mustGet(host, path string) string {
	d.t.Helper()
	code, body, err := d.get(host, path)
	if err != nil || code != 200 {
		d.t.Fatalf("GET %s%s: %d %q %v", host, path, code, body, err)
	}
	return body
}

// instanceID is the data dir's instance id, on the labels of every container
// its daemon runs.
func instanceID(t *testing.T, dataDir string) string {
	t.Helper()
	st, err := store.Open(filepath.Join(dataDir, "clank.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	owner, err := st.GetMeta(context.Background(), "owner")
	if err != nil || owner == "" {
		t.Fatalf("instance id of %s: %q %v", dataDir, owner, err)
	}
	return owner
}
