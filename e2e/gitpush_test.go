package e2e

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
)

var sshRe = regexp.MustCompile(`SSH dashboard and git push on (127\.0\.0\.1:\d+)`)

// pushWorld is a `clank serve` with its SSH server on 127.0.0.1, an admin's
// and a viewer's key in its authorized_keys, and a stranger's key outside.
type pushWorld struct {
	*daemon
	sshAddr                 string
	admin, viewer, stranger string // private key files
	base, nonce             string // the sample app image Dockerfiles start FROM; removeGitBuilds' nonce
}

func newPushWorld(t *testing.T, args ...string) *pushWorld {
	t.Helper()
	for _, tool := range []string{"git", "ssh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("git push tests need the system's %s: %v", tool, err)
		}
	}
	rt := testdocker.Require(t)
	w := &pushWorld{base: testdocker.SampleImage(t, rt, "v1")}
	w.nonce = removeGitBuilds(t, rt)
	w.daemon = startDaemonWith(t, "", "127.0.0.1:0", nil, append([]string{"--ssh-addr", "127.0.0.1:0"}, args...)...)
	for deadline := time.Now().Add(10 * time.Second); w.sshAddr == ""; time.Sleep(20 * time.Millisecond) {
		if m := sshRe.FindStringSubmatch(w.log.String()); m != nil {
			w.sshAddr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("clank serve did not say where SSH listens:\n%s", w.log)
		}
	}
	keys := t.TempDir()
	var lines []string
	for _, k := range []struct {
		file *string
		role string
	}{{&w.admin, `role="admin" `}, {&w.viewer, `role="viewer" `}, {&w.stranger, ""}} {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		block, err := gossh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		*k.file = filepath.Join(keys, strings.Trim(k.role, `role="admin `)+"key"+string(rune('a'+len(lines))))
		if err := os.WriteFile(*k.file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
		sshPub, err := gossh.NewPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		if k.role != "" {
			lines = append(lines, k.role+strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sshPub))))
		}
	}
	writeFile(t, filepath.Join(w.dataDir, "authorized_keys"), strings.Join(lines, "\n")+"\n")
	return w
}

// repo makes a git repository whose one commit holds a Dockerfile of the
// sample app at version (plus extra lines), and returns it and the commit.
func (w *pushWorld) repo(t *testing.T, version, extra string) (string, string) {
	t.Helper()
	return gitRepo(t, map[string]string{"Dockerfile": gitDockerfile(w.base, w.nonce, version) + extra})
}

// commit adds a commit that changes the Dockerfile to version's.
func (w *pushWorld) commit(t *testing.T, repo, version string) string {
	t.Helper()
	writeFile(t, filepath.Join(repo, "Dockerfile"), gitDockerfile(w.base, w.nonce, version))
	gitIn(t, repo, "-c", "user.name=Clank Test", "-c", "user.email=test@clank.dev", "commit", "-q", "-am", version)
	return gitIn(t, repo, "rev-parse", "HEAD")
}

// gitCmd is git in repo, talking SSH with key through OpenSSH's client.
func (w *pushWorld) gitCmd(ctx context.Context, repo, key string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", repo}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_SSH_COMMAND=ssh -F /dev/null -i "+key+" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // killed with its ssh
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}

// push runs `git push` of HEAD to refspec's branch of service with key and
// returns what git printed and its exit code.
func (w *pushWorld) push(t *testing.T, repo, key, service, branch string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := w.gitCmd(ctx, repo, key, "push", w.url(service), "HEAD:refs/heads/"+branch).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("git push: %v\n%s", err, out)
	}
	if exit != nil {
		return string(out), exit.ExitCode()
	}
	return string(out), 0
}

// startPush starts an admin's `git push` of HEAD to service's main and
// returns it with a reader of what it prints, line by line as it comes.
func (w *pushWorld) startPush(t *testing.T, repo, service string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd := w.gitCmd(ctx, repo, w.admin, "push", "--progress", w.url(service), "HEAD:refs/heads/main")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(stderr)
}

func (w *pushWorld) url(service string) string { return "ssh://git@" + w.sshAddr + "/" + service }

// remoteHead is what the service's repository says branch is ("" if none).
func (w *pushWorld) remoteHead(t *testing.T, repo, service, branch string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := w.gitCmd(ctx, repo, w.admin, "ls-remote", w.url(service), "refs/heads/"+branch).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "nothing was pushed here yet") {
			return ""
		}
		t.Fatalf("git ls-remote: %v\n%s", err, out)
	}
	id, _, _ := strings.Cut(string(out), "\t")
	return strings.TrimSpace(id)
}

// git push with an admin's key builds the commit as `deploy --git` does and
// deploys it; the build and the lifecycle reach the pusher while the push
// runs; fetch and clone work too.
func TestGitPushDeploys(t *testing.T) {
	w := newPushWorld(t)
	w.ok("service", "create", "web", "--image", w.base, "--port", "8080", "--health-path", "/healthz", "--env", "READY_AFTER=2s")
	repo, commit := w.repo(t, "pushed-1", "")

	// Read as it comes: HEALTH_CHECKING shows while the deployment is in it.
	cmd, sc := w.startPush(t, repo, "web")
	var out strings.Builder
	sawLive := false
	for sc.Scan() {
		line := sc.Text()
		out.WriteString(line + "\n")
		if strings.Contains(line, "remote:   HEALTH_CHECKING") && !sawLive {
			ds := deploymentsJSON(t, w.daemon)
			sawLive = len(ds) == 1 && ds[0]["status"] == "HEALTH_CHECKING"
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("git push: %v\n%s", err, out.String())
	}
	for _, want := range []string{"remote: clank: building web at " + commit[:12] + " as clank/web:" + commit[:12],
		"remote: Step 1/", "ENV VERSION=pushed-1", "remote: clank: deploy #1 of web", "remote:   ACTIVE", "HEAD -> main"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("git push output lacks %q:\n%s", want, out.String())
		}
	}
	if !sawLive {
		t.Errorf("the lifecycle did not reach the pusher while the deployment was HEALTH_CHECKING:\n%s", out.String())
	}
	if body := w.mustGet("web.localhost", "/"); body != "hello from pushed-1" {
		t.Fatalf("web answers %q after the push", body)
	}
	dep := deploymentsJSON(t, w.daemon)[0]
	fp := fingerprint(t, w.admin)
	if dep["image"] != "clank/web:"+commit[:12] || dep["image_source"] != "local" || dep["triggered_by"] != "git ("+fp+")" {
		t.Fatalf("the push's deployment: image %v (%v) by %v", dep["image"], dep["image_source"], dep["triggered_by"])
	}
	if got := w.remoteHead(t, repo, "web", "main"); got != commit {
		t.Fatalf("the repository's main is %q, want %s", got, commit)
	}

	// A second commit, and a branch that is not the deploy branch.
	commit2 := w.commit(t, repo, "pushed-2")
	if out, code := w.push(t, repo, w.admin, "web", "main"); code != 0 || !strings.Contains(out, "remote:   ACTIVE") {
		t.Fatalf("second push: exit %d\n%s", code, out)
	}
	if body := w.mustGet("web.localhost", "/"); body != "hello from pushed-2" {
		t.Fatalf("web answers %q after the second push", body)
	}
	w.commit(t, repo, "pushed-3")
	out2, code := w.push(t, repo, w.admin, "web", "feature")
	if code != 0 || !strings.Contains(out2, "remote: feature: stored; pushes to main deploy web") {
		t.Fatalf("push to another branch: exit %d\n%s", code, out2)
	}
	if n := len(deploymentsJSON(t, w.daemon)); n != 2 {
		t.Fatalf("a push to another branch deployed: %d deployments", n)
	}

	// Fetch and clone read what was pushed.
	clone := filepath.Join(t.TempDir(), "clone")
	cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
	defer ccancel()
	if out, err := w.gitCmd(cctx, repo, w.viewer, "clone", "-q", "-b", "main", w.url("web"), clone).CombinedOutput(); err != nil {
		t.Fatalf("a viewer's clone: %v\n%s", err, out)
	}
	if got := gitIn(t, clone, "rev-parse", "HEAD"); got != commit2 {
		t.Fatalf("the clone's HEAD is %s, want %s", got, commit2)
	}
}

func fingerprint(t *testing.T, keyFile string) string {
	t.Helper()
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return gossh.FingerprintSHA256(signer.PublicKey())
}

// A push that cannot deploy fails, saying why, and moves no ref: a failed
// build, a commit without a Dockerfile, a health check that never passes.
// The hostile and the lost are refused before git runs: a viewer's key, a
// stranger's, an unknown service, a path out of the repositories.
func TestGitPushRefusals(t *testing.T) {
	w := newPushWorld(t)
	rt := testdocker.Require(t)
	w.ok("service", "create", "web", "--image", w.base, "--port", "8080", "--health-path", "/healthz")
	good, goodCommit := w.repo(t, "good", "")

	cases := []struct {
		name, key, service string
		repo               func() string
		want               []string
	}{
		{"viewer", w.viewer, "web", func() string { return good }, []string{"only an admin's key may push"}},
		{"stranger", w.stranger, "web", func() string { return good }, []string{"Permission denied"}},
		{"unknown service", w.admin, "nope", func() string { return good }, []string{`no service named "nope"`}},
		{"path traversal", w.admin, "../web", func() string { return good }, []string{"is no repository here"}},
		{"no Dockerfile", w.admin, "web", func() string {
			r, c := gitRepo(t, map[string]string{"README": "no Dockerfile\n"})
			return r + "#" + c
		}, []string{"has no Dockerfile at the root", "pre-receive hook declined"}},
		{"failed build", w.admin, "web", func() string {
			r, c := w.repo(t, "broken", "COPY missing.txt /missing.txt\n")
			return r + "#" + c
		}, []string{"missing.txt", "pre-receive hook declined"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			repo, commit, _ := strings.Cut(tc.repo(), "#")
			out, code := w.push(t, repo, tc.key, tc.service, "main")
			if code == 0 {
				t.Fatalf("git push succeeded:\n%s", out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("git push output lacks %q:\n%s", want, out)
				}
			}
			if commit != "" {
				if _, err := rt.InspectImage(context.Background(), "clank/web:"+commit[:12]); !errors.Is(err, engine.ErrImageNotFound) {
					t.Errorf("a refused push left an image: %v", err)
				}
			}
		})
	}
	if n := len(deploymentsJSON(t, w.daemon)); n != 0 {
		t.Fatalf("refused pushes made %d deployments", n)
	}
	if got := w.remoteHead(t, good, "web", "main"); got != "" {
		t.Fatalf("refused pushes moved main to %s", got)
	}
	if _, err := os.Stat(filepath.Join(w.dataDir, "git", "nope.git")); !os.IsNotExist(err) {
		t.Fatalf("a push to an unknown service made a repository: %v", err)
	}

	// A deployment that fails its health check fails the push: main stays.
	w.ok("env", "set", "--service", "web", "READY_AFTER=1h")
	w.ok("service", "update", "web", "--deploy-timeout", "3s")
	out, code := w.push(t, good, w.admin, "web", "main")
	if code == 0 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "health check") {
		t.Fatalf("push of an app that never gets healthy: exit %d\n%s", code, out)
	}
	if got := w.remoteHead(t, good, "web", "main"); got != "" {
		t.Fatalf("a failed deployment moved main to %s", got)
	}
	w.ok("env", "unset", "--service", "web", "READY_AFTER")
	if out, code := w.push(t, good, w.admin, "web", "main"); code != 0 {
		t.Fatalf("the same push once the app is healthy: exit %d\n%s", code, out)
	}
	if got := w.remoteHead(t, good, "web", "main"); got != goodCommit {
		t.Fatalf("main is %q after a good push, want %s", got, goodCommit)
	}
}

// After a rollback, a push builds and keeps its image but does not deploy
// it, and says why and how to go on; unfreeze lets the next push deploy.
func TestGitPushWhileFrozen(t *testing.T) {
	w := newPushWorld(t)
	rt := testdocker.Require(t)
	w.ok("service", "create", "web", "--image", w.base, "--port", "8080", "--health-path", "/healthz")
	repo, _ := w.repo(t, "f1", "")
	for i, version := range []string{"", "f2"} {
		if i > 0 {
			w.commit(t, repo, version)
		}
		if out, code := w.push(t, repo, w.admin, "web", "main"); code != 0 {
			t.Fatalf("push %d: exit %d\n%s", i+1, code, out)
		}
	}
	w.ok("rollback", "--service", "web")
	held := w.commit(t, repo, "f3")
	out, code := w.push(t, repo, w.admin, "web", "main")
	image := "clank/web:" + held[:12]
	if code != 0 || !strings.Contains(out, "remote: clank: service web is frozen") || !strings.Contains(out, "clank unfreeze --service web") ||
		!strings.Contains(out, "the build is kept, not deployed: "+image) {
		t.Fatalf("push while frozen: exit %d\n%s", code, out)
	}
	if _, err := rt.InspectImage(context.Background(), image); err != nil {
		t.Fatalf("the held build is not in the engine: %v", err)
	}
	if svc := servicesJSON(t, w.daemon)["web"]; svc["held_image"] != image || svc["frozen"] != true {
		t.Fatalf("after the held push: %v", svc)
	}
	if ds := deploymentsJSON(t, w.daemon); len(ds) != 3 || ds[0]["kind"] != "rollback" {
		t.Fatalf("a push while frozen deployed: %v", ds[0])
	}
	if body := w.mustGet("web.localhost", "/"); body != "hello from f1" {
		t.Fatalf("web answers %q, want the rollback's f1", body)
	}

	w.ok("unfreeze", "--service", "web")
	w.commit(t, repo, "f4")
	if out, code := w.push(t, repo, w.admin, "web", "main"); code != 0 || !strings.Contains(out, "remote:   ACTIVE") {
		t.Fatalf("push after unfreeze: exit %d\n%s", code, out)
	}
	if body := w.mustGet("web.localhost", "/"); body != "hello from f4" {
		t.Fatalf("web answers %q after unfreeze and push", body)
	}
}

// A pusher that goes away mid-push leaves no half-made state: the
// deployment it started ends and is recorded, no ref moves, and the next
// push works.
func TestGitPushClientGoesAway(t *testing.T) {
	w := newPushWorld(t)
	w.ok("service", "create", "web", "--image", w.base, "--port", "8080", "--health-path", "/healthz", "--env", "READY_AFTER=3s")
	repo, commit := w.repo(t, "gone-1", "")
	cmd, sc := w.startPush(t, repo, "web")
	for sc.Scan() {
		if strings.Contains(sc.Text(), "remote:   HEALTH_CHECKING") {
			break
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // git and its ssh
	cmd.Wait()

	waitFor(t, time.Minute, func() bool {
		ds := deploymentsJSON(t, w.daemon)
		return len(ds) == 1 && (ds[0]["status"] == "ACTIVE" || ds[0]["status"] == "FAILED")
	})
	if ds := deploymentsJSON(t, w.daemon); ds[0]["status"] != "ACTIVE" || ds[0]["image"] != "clank/web:"+commit[:12] {
		t.Fatalf("the deployment the gone pusher started: %v %v (%v)", ds[0]["status"], ds[0]["image"], ds[0]["failure_reason"])
	}
	if got := w.remoteHead(t, repo, "web", "main"); got != "" {
		t.Fatalf("a push cut off before its answer moved main to %s", got)
	}
	// Gone while the image builds: the build is cancelled, or it finishes
	// and its deployment ends; nothing stays in progress.
	w.commit(t, repo, "gone-2")
	handled := strings.Count(w.log.String(), `msg="git push`)
	cmd, sc = w.startPush(t, repo, "web")
	for sc.Scan() {
		if strings.Contains(sc.Text(), "remote: clank: building web") {
			break
		}
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
	// The daemon logs each push it has done with, refused or not.
	waitFor(t, time.Minute, func() bool { return strings.Count(w.log.String(), `msg="git push`) > handled })
	waitFor(t, time.Minute, func() bool {
		for _, d := range deploymentsJSON(t, w.daemon) {
			if d["status"] == "DEPLOYING" || d["status"] == "HEALTH_CHECKING" {
				return false
			}
		}
		return true
	})

	w.commit(t, repo, "gone-3")
	if out, code := w.push(t, repo, w.admin, "web", "main"); code != 0 || !strings.Contains(out, "remote:   ACTIVE") {
		t.Fatalf("the next push: exit %d\n%s", code, out)
	}
	if body := w.mustGet("web.localhost", "/"); body != "hello from gone-3" {
		t.Fatalf("web answers %q", body)
	}
}

// A service with --push-builds: the push's build goes to the Clank registry
// (as deploy --git --push does) and deploys from there.
func TestGitPushBuildsToTheRegistry(t *testing.T) {
	w := newPushWorld(t, "--registry-addr", "127.0.0.1:0")
	reg := w.registry()
	w.ok("service", "create", "web", "--image", w.base, "--port", "8080", "--health-path", "/healthz", "--push-builds")
	repo, commit := w.repo(t, "pushed-reg", "")
	out, code := w.push(t, repo, w.admin, "web", "main")
	image := reg + "/web:" + commit[:12]
	if code != 0 || !strings.Contains(out, "as "+image) || !strings.Contains(out, "remote:   ACTIVE") {
		t.Fatalf("push with --push-builds: exit %d\n%s", code, out)
	}
	dep := deploymentsJSON(t, w.daemon)[0]
	if dep["image"] != image || dep["image_source"] != "registry" {
		t.Fatalf("the push's deployment: %v (%v), want %s (registry)", dep["image"], dep["image_source"], image)
	}
	if body := w.mustGet("web.localhost", "/"); body != "hello from pushed-reg" {
		t.Fatalf("web answers %q", body)
	}
}
