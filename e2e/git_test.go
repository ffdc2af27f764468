package e2e

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/docker"
	"github.com/clank-dev/clank/internal/testdocker"
)

// gitRepo makes a git repository holding files in one commit and returns its
// path and the commit's id.
func gitRepo(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CLANK_REQUIRE_GIT") == "1" {
			t.Fatalf("CLANK_REQUIRE_GIT=1: no git: %v", err)
		}
		t.Skipf("no git (CLANK_REQUIRE_GIT=1 makes this a failure): %v", err)
	}
	dir := t.TempDir()
	for name, body := range files {
		writeFile(t, filepath.Join(dir, name), body)
	}
	gitIn(t, dir, "init", "-q")
	gitIn(t, dir, "add", ".")
	gitIn(t, dir, "-c", "user.name=Clank Test", "-c", "user.email=test@clank.dev", "commit", "-q", "-m", "test")
	return dir, gitIn(t, dir, "rev-parse", "HEAD")
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func gitIn(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// gitBuildLabel marks every image (intermediate ones too) that a test's
// Dockerfiles make, with a value per test, for removeGitBuilds.
const gitBuildLabel = testdocker.TestLabel + ".git"

// gitDockerfile is a Dockerfile of the sample app at version; nonce is the
// test's, from removeGitBuilds.
func gitDockerfile(base, nonce, version string) string {
	return "FROM " + base + "\nLABEL " + testdocker.TestLabel + "=1 " + gitBuildLabel + "=" + nonce + "\nENV VERSION=" + version + "\n"
}

// removeGitBuilds returns a nonce for gitDockerfile and removes, when the test
// ends, every image that carries it: the built tags and the layers a failed
// build left behind. Called before startDaemon, it runs after the daemon's
// containers are gone.
func removeGitBuilds(t *testing.T, rt *docker.Runtime) string {
	t.Helper()
	nonce := testdocker.RandomSuffix()
	t.Cleanup(func() { testdocker.RemoveImagesLabelled(t, rt, gitBuildLabel, nonce) })
	return nonce
}

func TestDeployFromGit(t *testing.T) {
	rt := testdocker.Require(t)
	base := testdocker.SampleImage(t, rt, "v1")
	nonce := removeGitBuilds(t, rt)
	version := "git-" + testdocker.RandomSuffix()
	repo, commit := gitRepo(t, map[string]string{
		"Dockerfile": gitDockerfile(base, nonce, version),
		"app/README": "the second version's build context\n",
	})
	image := "clank/web:" + commit[:12]

	d := startDaemon(t, "", "127.0.0.1:0")
	d.ok("service", "create", "web", "--image", base, "--port", "8080", "--health-path", "/healthz")
	out := d.ok("deploy", "--service", "web", "--git", repo)
	for _, want := range []string{commit[:12], "ENV VERSION=" + version, "ACTIVE"} {
		if !strings.Contains(out, want) {
			t.Errorf("deploy --git output lacks %q:\n%s", want, out)
		}
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from "+version {
		t.Fatalf("web answers %q, want the build of %s", body, commit[:12])
	}
	dep := deploymentsJSON(t, d)[0]
	if dep["image"] != image || dep["image_source"] != "local" {
		t.Fatalf("deployment image %v (%v), want %s (local)", dep["image"], dep["image_source"], image)
	}
	if labels := imageLabels(t, rt, image); labels[engine.LabelManaged] != "true" || labels[engine.LabelService] != "web" {
		t.Errorf("image %s labels: %v", image, labels)
	}

	// A directory inside the repository is the build context: at HEAD it has
	// no Dockerfile (the root's does not count)...
	appDir := filepath.Join(repo, "app")
	if _, errOut, code := d.run("deploy", "--service", "web", "--git", appDir); code != 2 || !strings.Contains(errOut, "no Dockerfile") {
		t.Fatalf("deploy --git %s without app/Dockerfile: exit %d, %q", appDir, code, errOut)
	}
	// ...and in a second commit, named by a ref while HEAD is elsewhere, it has.
	version2 := "git-" + testdocker.RandomSuffix()
	writeFile(t, filepath.Join(appDir, "Dockerfile"), gitDockerfile(base, nonce, version2))
	gitIn(t, repo, "add", ".")
	gitIn(t, repo, "-c", "user.name=Clank Test", "-c", "user.email=test@clank.dev", "commit", "-q", "-m", "two")
	gitIn(t, repo, "tag", "two")
	commit2 := gitIn(t, repo, "rev-parse", "HEAD")
	gitIn(t, repo, "checkout", "-q", commit)
	d.ok("deploy", "--service", "web", "--git", appDir+"#two")
	if body := d.mustGet("web.localhost", "/"); body != "hello from "+version2 {
		t.Fatalf("web answers %q after deploying app#two", body)
	}
	if dep := deploymentsJSON(t, d); len(dep) != 2 || dep[0]["image"] != "clank/web:"+commit2[:12] {
		t.Fatalf("deployments after app#two: %v", dep)
	}
}

func TestDeployFromGitPush(t *testing.T) {
	rt := testdocker.Require(t)
	base := testdocker.SampleImage(t, rt, "v1")
	nonce := removeGitBuilds(t, rt)
	version := "git-" + testdocker.RandomSuffix()
	repo, commit := gitRepo(t, map[string]string{"Dockerfile": gitDockerfile(base, nonce, version)})
	d := startDaemonWithRegistry(t)
	regAddr := d.registry()
	image := regAddr + "/web:" + commit[:12]
	d.ok("service", "create", "web", "--image", base, "--port", "8080")
	out := d.ok("deploy", "--service", "web", "--git", repo, "--push")
	if !strings.Contains(out, "ENV VERSION="+version) || !strings.Contains(out, "ACTIVE") {
		t.Errorf("deploy --git --push output:\n%s", out)
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from "+version {
		t.Fatalf("web answers %q", body)
	}
	dep := deploymentsJSON(t, d)[0]
	if dep["image"] != image || dep["image_source"] != "registry" {
		t.Fatalf("deployment image %v (%v), want %s (registry)", dep["image"], dep["image_source"], image)
	}
	// The Clank registry has it.
	req, _ := http.NewRequest(http.MethodHead, "http://"+regAddr+"/v2/web/manifests/"+commit[:12], nil)
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD manifest web:%s in the Clank registry: %s", commit[:12], resp.Status)
	}
	if want := dep["image_digest"]; resp.Header.Get("Docker-Content-Digest") != want {
		t.Errorf("registry digest %q, deployment pinned %v", resp.Header.Get("Docker-Content-Digest"), want)
	}
	// Local-only: no clank/web tag was made.
	if _, err := rt.InspectImage(context.Background(), "clank/web:"+commit[:12]); !errors.Is(err, engine.ErrImageNotFound) {
		t.Errorf("a pushed build also left a local tag: %v", err)
	}
}

func TestDeployFromGitBadInput(t *testing.T) {
	rt := testdocker.Require(t)
	base := testdocker.SampleImage(t, rt, "v1")
	nonce := removeGitBuilds(t, rt)
	good, _ := gitRepo(t, map[string]string{"Dockerfile": gitDockerfile(base, nonce, "v-good")})
	noDockerfile, _ := gitRepo(t, map[string]string{"README": "no Dockerfile here\n"})
	broken, brokenCommit := gitRepo(t, map[string]string{"Dockerfile": gitDockerfile(base, nonce, "v-broken") + "COPY missing.txt /missing.txt\n"})

	d := startDaemon(t, "", "127.0.0.1:0")
	d.ok("service", "create", "web", "--image", base, "--port", "8080")
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--git", t.TempDir()}, 2, "not a git repository"},
		{[]string{"--git", filepath.Join(t.TempDir(), "nope")}, 2, "no such directory"},
		{[]string{"--git", good + "#nope"}, 2, `"nope" is not a commit`},
		{[]string{"--git", good + "#"}, 2, "invalid ref"},
		{[]string{"--git", good + "#--output=/tmp/x"}, 2, "invalid ref"},
		{[]string{"--git", noDockerfile}, 2, "no Dockerfile"},
		{[]string{"--git", good, "--push"}, 1, "without the Clank registry"},
		{[]string{"--git", broken}, 1, "missing.txt"},
	}
	for _, tc := range cases {
		args := append([]string{"deploy", "--service", "web"}, tc.args...)
		out, errOut, code := d.run(args...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("clank %s: exit %d (want %d), stderr %q (want %q), stdout %q", strings.Join(args, " "), code, tc.code, errOut, tc.msg, out)
			continue
		}
		if lines := strings.Count(strings.TrimSpace(errOut), "\n"); lines != 0 {
			t.Errorf("clank %s: error is %d lines: %q", strings.Join(args, " "), lines+1, errOut)
		}
	}
	_, errOut, code := d.run("deploy", "--service", "nope", "--git", good)
	if code != 1 || !strings.Contains(errOut, `unknown service "nope"`) {
		t.Errorf("deploy --git to an unknown service: exit %d, %q", code, errOut)
	}
	if n := len(deploymentsJSON(t, d)); n != 0 {
		t.Fatalf("%d deployments after bad input", n)
	}
	if _, err := rt.InspectImage(context.Background(), "clank/web:"+brokenCommit[:12]); !errors.Is(err, engine.ErrImageNotFound) {
		t.Errorf("a failed build left an image: %v", err)
	}

	// The API refuses a commit that is not one before reading any context.
	c := api.NewClient(filepath.Join(d.dataDir, "clank.sock"))
	for _, commit := range []string{"", "abc", "HEAD", "not-hex-at-all", strings.Repeat("a", 65), "ABCDEF1"} {
		_, err := c.Build(context.Background(), "web", commit, false, strings.NewReader("not a tar"), io.Discard)
		var re *api.RemoteError
		if !errors.As(err, &re) || re.Status != http.StatusBadRequest || re.Code != "invalid" {
			t.Errorf("build with commit %q: %v", commit, err)
		}
	}
}

// imageLabels reads an image's labels from the engine.
func imageLabels(t *testing.T, rt *docker.Runtime, ref string) map[string]string {
	t.Helper()
	res, err := rt.Client().ImageInspect(context.Background(), ref)
	if err != nil {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	if res.Config == nil {
		return nil
	}
	return res.Config.Labels
}

// startDaemonWithRegistry is startDaemon with the Clank registry on a port
// of its own choosing (d.registry() says which).
func startDaemonWithRegistry(t *testing.T) *daemon {
	t.Helper()
	d := startDaemonWith(t, "", "127.0.0.1:0", nil, "--registry-addr", "127.0.0.1:0")
	resp, err := http.Get("http://" + d.registry() + "/v2/")
	if err != nil {
		t.Fatalf("the daemon does not serve the Clank registry on %s: %v", d.registry(), err)
	}
	resp.Body.Close()
	return d
}

// registry is the Clank registry's address, as the daemon printed it.
func (d *daemon) registry() string {
	d.t.Helper()
	select {
	case addr := <-d.regCh:
		d.regCh <- addr // for the next caller
		return addr
	case <-time.After(30 * time.Second):
		d.t.Fatalf("the daemon did not say where its registry listens:\n%s", d.log)
		return ""
	}
}
