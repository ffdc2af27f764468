package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	clankdaemon "github.com/clank-dev/clank/daemon"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
)

var curlRe = regexp.MustCompile(`curl -H 'Host: (\w+)\.localhost' http://(127\.0\.0\.1:\d+)/`)

// TestDemo runs the README's command, `clank demo`, without a terminal: it
// builds its images from this binary, sets up three services (one with a
// failed deployment), serves them through the edge router, and stops its
// containers when interrupted.
func TestDemo(t *testing.T) {
	rt := testdocker.Require(t)
	dataDir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, clankBin, "demo", "--http-addr", "127.0.0.1:0", "--ssh-addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0")
	// Its own image names: the test never touches a user's clank-demo images.
	repo := "clank-test-demo-" + testdocker.RandomSuffix()
	cmd.Env = append(os.Environ(), "CLANK_DATA_DIR="+dataDir, "CLANK_DEMO_REPO="+repo)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Whatever fails below, the demo goes, then its containers (once its
	// instance id is known), then the images this run built, in that order.
	var owner string
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if owner != "" {
			testdocker.RemoveContainers(t, rt, map[string]string{engine.LabelOwner: owner})
		}
		// The demo's images carry no test label: remove what this run built.
		for _, ref := range clankdaemon.DemoImages(repo) {
			rt.RemoveImage(context.Background(), ref)
		}
	})
	routes := map[string]string{}
	var out strings.Builder
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		for _, m := range curlRe.FindAllStringSubmatch(lines.Text(), -1) { // the hints put them on one line
			routes[m[1]] = m[2]
		}
		if strings.HasPrefix(lines.Text(), "clank demo: data in") {
			// The daemon is up: its store has the instance id its containers carry.
			owner = instanceID(t, dataDir)
		}
		if strings.Contains(lines.Text(), "serving until interrupted") {
			break
		}
	}
	if owner == "" || len(routes) != 3 || !strings.Contains(out.String(), "FAILED") {
		t.Fatalf("demo output (instance %q):\n%s", owner, out.String())
	}
	d := &daemon{t: t, dataDir: dataDir, router: routes["web"], owner: owner}
	for _, svc := range []string{"web", "api", "docs"} {
		if body := d.mustGet(svc+".localhost", "/"); !strings.HasPrefix(body, "hello from "+svc+"-") {
			t.Errorf("%s answers %q", svc, body)
		}
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from web-v3" {
		t.Errorf("web answers %q, want its newest deployment", body)
	}
	// web ran #1, #2 and #3 (ACTIVE): both earlier ones can be rolled back to.
	waitFor(t, 30*time.Second, func() bool {
		deps := deploymentsJSON(t, d)
		return len(deps) == 3 && deps[0]["rollback_capable"] == false && deps[1]["rollback_capable"] == true && deps[2]["rollback_capable"] == true
	})
	// A rollback works against the demo.
	d.ok("rollback", "--service", "web")
	if body := d.mustGet("web.localhost", "/"); body != "hello from web-v2" {
		t.Errorf("after rollback web answers %q", body)
	}
	if cs := d.containers(t); len(cs) < 3 {
		t.Fatalf("the demo runs %d containers, want one per service at least", len(cs))
	}

	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("demo exit: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the demo did not stop on interrupt")
	}
	if cs := d.containers(t); len(cs) != 0 {
		t.Fatalf("after the demo: %d containers left: %+v", len(cs), cs)
	}
}
