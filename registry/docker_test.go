package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/store"
)

const testLabel = "dev.clank.test"

// requireDocker connects to the Docker engine; without one the test is
// skipped, or fails when CLANK_REQUIRE_DOCKER=1.
func requireDocker(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
			cli.Close()
		}
	}
	if err != nil {
		if os.Getenv("CLANK_REQUIRE_DOCKER") == "1" {
			t.Fatalf("CLANK_REQUIRE_DOCKER=1: %v", err)
		}
		t.Skipf("no Docker engine: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// buildHello builds a FROM scratch image holding one small unique file,
// tagged tag, and returns its ID. Every ref of it is removed when the test ends.
func buildHello(t *testing.T, cli *client.Client, tag string) string {
	t.Helper()
	nonce := make([]byte, 8)
	_, _ = rand.Read(nonce)
	files := []struct{ name, body string }{
		{"Dockerfile", "FROM scratch\nCOPY hello /hello\n"},
		{"hello", "hello from clank " + hex.EncodeToString(nonce) + "\n"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The shared engine loses a build's parent image now and then while
	// other processes build and remove images beside it: try again then.
	var err error
	for attempt := range 3 {
		if err = buildOnce(ctx, cli, tag, files); err == nil || !testdocker.LostBuildParent(err) {
			break
		}
		time.Sleep(time.Duration(attempt+1) * 500 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	insp, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatalf("inspect the built image: %v", err)
	}
	id := insp.ID
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := cli.ImageRemove(ctx, id, client.ImageRemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			t.Errorf("remove test image %s: %v", id, err)
		}
	})
	return id
}

// readStream reads a JSON-lines progress stream to its end; a line with an
// error field is the operation's failure.
func readStream(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
	}
}

func TestDockerPushToEmbeddedRegistryAndPullByDigest(t *testing.T) {
	cli := requireDocker(t)
	c := startClank(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	suffix := hex.EncodeToString([]byte(time.Now().Format("150405.000")))
	local := "clank-test/registry-hello:" + suffix
	id := buildHello(t, cli, local)
	chk := NewChecker(CheckerOptions{})
	defer chk.Close()

	if got := Classify(local, c.addr, false); got != store.SourceLocal {
		t.Fatalf("Classify of a fresh build = %q, want local", got)
	}

	// docker tag + docker push, with the registry's credential, as the CLI
	// would after `clank registry login`.
	target := c.addr + "/hello:v1"
	if _, err := cli.ImageTag(ctx, client.ImageTagOptions{Source: local, Target: target}); err != nil {
		t.Fatalf("tag: %v", err)
	}
	cred := c.srv.Credential()
	pushAuth, _ := json.Marshal(map[string]string{"username": cred.Username, "password": cred.Password, "serveraddress": c.addr})
	push, err := cli.ImagePush(ctx, target, client.ImagePushOptions{RegistryAuth: base64.URLEncoding.EncodeToString(pushAuth)})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	err = readStream(push)
	push.Close()
	if err != nil {
		t.Fatalf("push to the embedded registry: %v", err)
	}

	insp, err := cli.ImageInspect(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	var digest string
	for _, rd := range insp.RepoDigests {
		if repo, d, ok := strings.Cut(rd, "@"); ok && repo == c.addr+"/hello" {
			digest = d
		}
	}
	if digest == "" {
		t.Fatalf("no repo digest for %s after the push: %v", target, insp.RepoDigests)
	}
	if got := Classify(target, c.addr, true); got != store.SourceRegistry {
		t.Fatalf("Classify of the pushed image = %q, want registry", got)
	}
	if r := chk.checkOne(ctx, store.SourceRegistry, target, digest); r.State != store.AvailabilityAvailable {
		t.Fatalf("pushed image in the registry: %+v", r)
	}

	// The image leaves the engine; it is still available from the registry,
	// and the engine pulls it back by digest.
	for _, ref := range []string{target, local} {
		if _, err := cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Fatalf("remove %s: %v", ref, err)
		}
	}
	if r := chk.checkOne(ctx, store.SourceRegistry, target, digest); r.State != store.AvailabilityAvailable {
		t.Fatalf("registry image after the local removal: %+v", r)
	}
	pinned := c.addr + "/hello@" + digest
	// The pull is anonymous: loopback needs no credentials.
	emptyAuth := base64.URLEncoding.EncodeToString([]byte("{}"))
	pull, err := cli.ImagePull(ctx, pinned, client.ImagePullOptions{RegistryAuth: emptyAuth})
	if err != nil {
		t.Fatalf("pull %s: %v", pinned, err)
	}
	err = readStream(pull)
	pull.Close()
	if err != nil {
		t.Fatalf("pull %s: %v", pinned, err)
	}
	back, err := cli.ImageInspect(ctx, pinned)
	if err != nil {
		t.Fatalf("inspect after the pull: %v", err)
	}
	if back.ID != id {
		t.Fatalf("pulled image %s, want the pushed %s", back.ID, id)
	}
}

// buildOnce builds files (FROM scratch) as tag, labelled as a test image.
func buildOnce(ctx context.Context, cli *client.Client, tag string, files []struct{ name, body string }) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body))}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	res, err := cli.ImageBuild(ctx, &buf, client.ImageBuildOptions{
		Tags:   []string{tag},
		Labels: map[string]string{testLabel: "1"},
		Remove: true,
	})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	return readStream(res.Body)
}

// dockerCLI runs the docker command with its config in configDir (never the
// user's ~/.docker) and returns its output and error.
func dockerCLI(t *testing.T, configDir, stdin string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		if os.Getenv("CLANK_REQUIRE_DOCKER") == "1" {
			t.Fatalf("CLANK_REQUIRE_DOCKER=1: no docker CLI: %v", err)
		}
		t.Skipf("no docker CLI: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+configDir)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// The real Docker CLI and engine against the embedded registry: a push with
// no login is refused at once (no retries), `docker login` checks the
// password, a logged-in push works, and a pull with no login at all works.
func TestDockerCLILoginPushAndAnonymousPull(t *testing.T) {
	cli := requireDocker(t)
	c := startClank(t)
	cred := c.srv.Credential()
	target := c.addr + "/hello:" + hex.EncodeToString([]byte(time.Now().Format("150405.000")))
	buildHello(t, cli, target)
	loggedIn, anonymous := t.TempDir(), t.TempDir()

	start := time.Now()
	out, err := dockerCLI(t, loggedIn, "", "push", target)
	if err == nil || !strings.Contains(out, "denied") {
		t.Fatalf("docker push with no login: %v\n%s\nwant a refusal", err, out)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("the refused push took %s: the CLI retried it", took)
	}
	if resp, _ := c.request(t, http.MethodHead, "/v2/hello/manifests/"+target[strings.LastIndex(target, ":")+1:], ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("after a refused push the manifest answers %s; want 404", resp.Status)
	}

	if out, err := dockerCLI(t, loggedIn, "not-the-password\n", "login", "--username", cred.Username, "--password-stdin", c.addr); err == nil {
		t.Fatalf("docker login with a wrong password succeeded:\n%s", out)
	}
	if out, err := dockerCLI(t, loggedIn, cred.Password+"\n", "login", "--username", cred.Username, "--password-stdin", c.addr); err != nil || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("docker login: %v\n%s", err, out)
	}
	if out, err := dockerCLI(t, loggedIn, "", "push", target); err != nil || !strings.Contains(out, "digest: sha256:") {
		t.Fatalf("docker push after login: %v\n%s", err, out)
	}

	if out, err := dockerCLI(t, anonymous, "", "rmi", target); err != nil {
		t.Fatalf("docker rmi: %v\n%s", err, out)
	}
	if out, err := dockerCLI(t, anonymous, "", "pull", target); err != nil {
		t.Fatalf("anonymous docker pull from loopback: %v\n%s", err, out)
	}
	// An anonymous push of what is already there is still refused.
	if out, err := dockerCLI(t, anonymous, "", "push", target); err == nil {
		t.Fatalf("anonymous docker push succeeded:\n%s", out)
	}
}
