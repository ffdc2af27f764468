package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/internal/testdocker"
)

// dockerCLI runs the docker CLI with its config in configDir (never the user's
// ~/.docker).
func dockerCLI(t *testing.T, configDir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+configDir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var pushHintRe = regexp.MustCompile(`docker push (127\.0\.0\.1:\d+)/NAME:TAG`)

// `clank registry login` is the one step between a fresh daemon and a
// working `docker push`; pulls (the engine's own, for a deploy) need none.
func TestRegistryLoginThenDockerPush(t *testing.T) {
	rt := testdocker.Require(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatalf("the docker CLI: %v", err)
	}
	d := startDaemonWith(t, "", "127.0.0.1:0", nil, "--registry-addr", "127.0.0.1:0")
	loggedIn := t.TempDir()
	t.Setenv("DOCKER_CONFIG", loggedIn) // for clank registry login's docker login

	out := d.ok("registry", "login")
	m := pushHintRe.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("clank registry login:\n%s", out)
	}
	addr := m[1]
	var cfg struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	raw, err := os.ReadFile(filepath.Join(loggedIn, "config.json"))
	if err != nil || json.Unmarshal(raw, &cfg) != nil || cfg.Auths[addr] == nil {
		t.Fatalf("the Docker config after login has no entry for %s: %v\n%s", addr, err, raw)
	}
	// The credential is the one kept in the data dir, owner-only.
	password := strings.TrimSpace(d.ok("registry", "login", "--print-password"))
	var kept struct{ Password string }
	path := filepath.Join(d.dataDir, "registry", "auth", "credential.json")
	raw, err = os.ReadFile(path)
	if err != nil || json.Unmarshal(raw, &kept) != nil || kept.Password != password || len(password) < 40 {
		t.Fatalf("credential in %s (%v) does not match what login printed", path, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file mode: %v %v", fi.Mode(), err)
	}

	ref := addr + "/web:v1"
	if err := rt.TagImage(context.Background(), testdocker.SampleImage(t, rt, "v1"), ref); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testdocker.RemoveImage(t, rt, ref) })
	if out, err := dockerCLI(t, t.TempDir(), "push", ref); err == nil || !strings.Contains(out, "denied") {
		t.Fatalf("docker push without login: %v\n%s\nwant it refused", err, out)
	}
	if out, err := dockerCLI(t, loggedIn, "push", ref); err != nil {
		t.Fatalf("docker push after clank registry login: %v\n%s", err, out)
	}

	// The engine pulls anonymously: the local tag goes, the deploy pulls it.
	if out, err := dockerCLI(t, t.TempDir(), "rmi", ref); err != nil {
		t.Fatalf("docker rmi: %v\n%s", err, out)
	}
	d.ok("service", "create", "web", "--image", ref, "--port", "8080")
	if out := d.ok("deploy", "--service", "web"); !strings.Contains(out, "ACTIVE") {
		t.Fatalf("deploy of %s:\n%s", ref, out)
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from v1" {
		t.Fatalf("web answers %q", body)
	}
}
