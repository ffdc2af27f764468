// Package testdocker gives tests across the repository a real Docker engine:
// a connected runtime (or a skip), a freshly built sample app image, and
// clean-up of what the test started. Everything it creates carries the label
// dev.clank.test=1 and is removed when the test ends.
package testdocker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/docker"
)

// TestLabel marks everything tests create in Docker.
const TestLabel = "dev.clank.test"

// SampleAppPort is the port the sample app listens on inside its image (its
// default PORT).
const SampleAppPort = 8080

// Require connects to the Docker engine and closes the connection when the
// test ends. Without an engine the test is skipped, or fails when
// CLANK_REQUIRE_DOCKER=1.
func Require(tb testing.TB) *docker.Runtime {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt, err := docker.New(ctx)
	if err != nil {
		if os.Getenv("CLANK_REQUIRE_DOCKER") == "1" {
			tb.Fatalf("CLANK_REQUIRE_DOCKER=1: %v", err)
		}
		tb.Skipf("no Docker engine: %v", err)
	}
	tb.Cleanup(func() { rt.Close() })
	return rt
}

var sampleBinary struct {
	once sync.Once
	body []byte
	err  error
}

// sampleBase is the image every SampleImage of this process starts FROM: the
// binary and its entrypoint. It lives while any sample image does, so that
// each SampleImage is a one-step build, and is removed with the last one.
// Sharing an explicit base, rather than the engine's build cache, keeps one
// test's clean-up from pruning layers another test's build is using.
var sampleBase struct {
	mu   sync.Mutex
	tag  string
	refs int
}

// versionPattern is what SampleImage accepts as a version: it goes into an
// image tag and a Dockerfile line.
var versionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,60}$`)

// SampleImage builds an image of the sample app (internal/sampleapp) whose
// VERSION is version, tags it clank-test/sampleapp:<version>-<random>, and
// removes it when the test ends. The binary is compiled once per test process
// and put in a base image that is kept while any sample image exists, so a
// SampleImage is a one-step build (about a second); one that has to rebuild
// the base takes about three steps more.
func SampleImage(tb testing.TB, rt *docker.Runtime, version string) string {
	tb.Helper()
	return SampleImageLabelled(tb, rt, version, nil)
}

// SampleImageLabelled is SampleImage with image labels (dev.clank.schema, for
// one): a label makes a different image of the same version.
func SampleImageLabelled(tb testing.TB, rt *docker.Runtime, version string, labels map[string]string) string {
	tb.Helper()
	if !versionPattern.MatchString(version) {
		tb.Fatalf("SampleImage: version %q: want letters, digits, '.', '_' or '-'", version)
	}
	base, err := acquireSampleBase(rt)
	if err != nil {
		tb.Fatalf("SampleImage: %v", err)
	}
	tb.Cleanup(func() { releaseSampleBase(tb, rt) })

	dockerfile := "FROM " + base + "\nENV VERSION=" + version + "\n"
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		dockerfile += "LABEL " + strconv.Quote(k) + "=" + strconv.Quote(labels[k]) + "\n"
	}
	tag := "clank-test/sampleapp:" + version + "-" + RandomSuffix()
	if err := build(rt, tag, []docker.TarFile{{Name: "Dockerfile", Body: []byte(dockerfile)}}); err != nil {
		tb.Fatalf("SampleImage: %v", err)
	}
	tb.Cleanup(func() { RemoveImage(tb, rt, tag) })
	return tag
}

// acquireSampleBase returns the base image's tag, building it if no sample
// image exists, and counts one more user of it.
func acquireSampleBase(rt *docker.Runtime) (string, error) {
	sampleBase.mu.Lock()
	defer sampleBase.mu.Unlock()
	if sampleBase.refs == 0 {
		bin, err := sampleAppBinary()
		if err != nil {
			return "", err
		}
		// The nonce comes first so that no build step is shared with another
		// process's base through the engine's cache.
		nonce := RandomSuffix()
		dockerfile := "FROM scratch\nLABEL " + TestLabel + "=1 " + TestLabel + ".base=" + nonce +
			"\nCOPY sampleapp /sampleapp\nENTRYPOINT [\"/sampleapp\"]\n"
		tag := "clank-test/sampleapp-base:" + nonce
		if err := build(rt, tag, []docker.TarFile{
			{Name: "Dockerfile", Body: []byte(dockerfile)},
			{Name: "sampleapp", Mode: 0o755, Body: bin},
		}); err != nil {
			return "", err
		}
		sampleBase.tag = tag
	}
	sampleBase.refs++
	return sampleBase.tag, nil
}

// build builds files as tag, and tries again (twice at the most) when the
// engine's classic builder loses an image it was building on, which it does
// now and then while other processes build and remove images beside it
// ("unknown parent image", "failed to get digest", "unable to find image"): a fault of the shared
// engine, not of the test.
func build(rt *docker.Runtime, tag string, files []docker.TarFile) error {
	var err error
	for attempt := range 3 {
		if attempt > 0 {
			time.Sleep(time.Duration(attempt) * 500 * time.Millisecond)
		}
		var buildContext io.Reader
		if buildContext, err = docker.TarContext(files); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		_, err = rt.BuildImage(ctx, buildContext, tag, nil, nil)
		cancel()
		if err == nil || !LostBuildParent(err) {
			return err
		}
	}
	return err
}

// LostBuildParent says whether a build failed because the engine lost an
// image it was building on (a build worth trying again).
func LostBuildParent(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "unknown parent image") || strings.Contains(msg, "failed to get digest") ||
		strings.Contains(msg, "unable to find image")
}

// releaseSampleBase counts one user less, and removes the base with the last.
func releaseSampleBase(tb testing.TB, rt *docker.Runtime) {
	sampleBase.mu.Lock()
	defer sampleBase.mu.Unlock()
	sampleBase.refs--
	if sampleBase.refs == 0 {
		RemoveImage(tb, rt, sampleBase.tag)
		sampleBase.tag = ""
	}
}

// RemoveImage removes an image the test made, whole: first the test
// containers still made from it (they carry the image's TestLabel; an engine
// under test may not have stopped them yet when clean-up runs), then the
// image by its ID, by force and with its untagged parents, so that no
// dangling image is left. An image already gone is fine.
func RemoveImage(tb testing.TB, rt *docker.Runtime, ref string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	info, err := rt.InspectImage(ctx, ref)
	if errors.Is(err, engine.ErrImageNotFound) {
		return
	}
	if err != nil {
		tb.Errorf("remove test image %s: %v", ref, err)
		return
	}
	// An engine under test may start a stopped container again (Clank
	// supervises what it runs) between the stop and the removal: stop what
	// uses the image until the removal goes through.
	for attempt := 0; ; attempt++ {
		if !removeImageOnce(tb, rt, ref, info.ID, attempt) {
			return
		}
	}
}

// removeImageOnce is one attempt of RemoveImage, with a time of its own; it
// reports whether to try again.
func removeImageOnce(tb testing.TB, rt *docker.Runtime, ref, id string, attempt int) (again bool) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := rt.Client().ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("ancestor", id).Add("label", TestLabel+"=1")})
	if err != nil {
		tb.Errorf("remove test image %s: list its containers: %v", ref, err)
	}
	for _, c := range cs.Items {
		if err := stopContainer(rt, c.ID); err != nil {
			tb.Errorf("remove test image %s: remove container %s: %v", ref, c.ID, err)
		}
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second) // the stops took their own
	defer rcancel()
	_, err = rt.Client().ImageRemove(rctx, id, client.ImageRemoveOptions{Force: true, PruneChildren: true})
	switch {
	case err == nil, cerrdefs.IsNotFound(err), strings.Contains(err.Error(), "unrecognized image ID"):
		// Gone already: the engine under test (a prune) or another
		// clean-up of the same image removed it since it was looked up.
		return false
	case cerrdefs.IsConflict(err) && strings.Contains(err.Error(), "running container") && attempt < 20:
		return true
	}
	tb.Errorf("remove test image %s: %v", ref, err)
	return false
}

// CleanupRegistry removes, when the test ends, the test images of registry
// host (see RemoveRegistryImages).
func CleanupRegistry(tb testing.TB, rt *docker.Runtime, host string) {
	tb.Helper()
	tb.Cleanup(func() { RemoveRegistryImages(tb, rt, host) })
}

// RemoveRegistryImages removes every test image (TestLabel) the local engine
// holds under host, a registry the test started on an ephemeral port: what
// the test tagged and pushed, and what the code under test pulled, which a
// pull by digest leaves with no tag at all ("127.0.0.1:PORT/web@sha256:..."),
// so that no clean-up by tag finds it.
func RemoveRegistryImages(tb testing.TB, rt *docker.Runtime, host string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := rt.Client().ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("label", TestLabel+"=1")})
	if err != nil {
		tb.Errorf("list the test images of registry %s: %v", host, err)
		return
	}
	for _, img := range res.Items {
		if slices.ContainsFunc(slices.Concat(img.RepoTags, img.RepoDigests), func(ref string) bool {
			return strings.HasPrefix(ref, host+"/")
		}) {
			RemoveImage(tb, rt, img.ID)
		}
	}
}

// RemoveImagesLabelled removes every image (intermediate ones too) that
// carries label=value, children before their parents. The order comes from
// the parent chain: ImageList's Created has one-second resolution, so two
// layers of one build often tie, and an image with a child cannot go.
func RemoveImagesLabelled(tb testing.TB, rt *docker.Runtime, label, value string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := rt.Client().ImageList(ctx, client.ImageListOptions{All: true, Filters: make(client.Filters).Add("label", label+"="+value)})
	if err != nil {
		tb.Errorf("list images labelled %s=%s: %v", label, value, err)
		return
	}
	parent := make(map[string]string, len(res.Items))
	for _, img := range res.Items {
		parent[img.ID] = img.ParentID
	}
	for _, id := range leavesFirst(parent) {
		RemoveImage(tb, rt, id)
	}
}

// leavesFirst orders the images of parent (ID -> parent ID) so that every
// image comes before its parent.
func leavesFirst(parent map[string]string) []string {
	children := make(map[string]int, len(parent))
	for _, p := range parent {
		if _, ours := parent[p]; ours {
			children[p]++
		}
	}
	var order, leaves []string
	for id := range parent {
		if children[id] == 0 {
			leaves = append(leaves, id)
		}
	}
	for len(leaves) > 0 {
		id := leaves[len(leaves)-1]
		leaves = leaves[:len(leaves)-1]
		order = append(order, id)
		if p, ours := parent[id]; ours && p != "" {
			if _, known := parent[p]; known {
				children[p]--
				if children[p] == 0 {
					leaves = append(leaves, p)
				}
			}
		}
	}
	return order
}

// sampleAppBinary compiles cmd/sampleapp as a static Linux binary, once per
// process, and returns its bytes.
func sampleAppBinary() ([]byte, error) {
	sampleBinary.once.Do(func() {
		sampleBinary.body, sampleBinary.err = buildSampleApp()
	})
	return sampleBinary.body, sampleBinary.err
}

func buildSampleApp() ([]byte, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "clank-sampleapp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "sampleapp")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./cmd/sampleapp")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/sampleapp: %v\n%s", err, msg)
	}
	return os.ReadFile(out)
}

// moduleRoot finds the repository's go.mod: next to this source file's
// grandparent, or else where the go command says.
func moduleRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			return root, nil
		}
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root: go env GOMOD: %w", err)
	}
	path := strings.TrimSpace(string(gomod))
	if path == "" || path == os.DevNull {
		return "", errors.New("find the module root: not inside a Go module")
	}
	return filepath.Dir(path), nil
}

// Cleanup removes, when the test ends, every container that carries all of
// labels (running or not). labels must not be empty: a test removes only what
// it created.
func Cleanup(tb testing.TB, rt *docker.Runtime, labels map[string]string) {
	tb.Helper()
	if len(labels) == 0 {
		tb.Fatal("testdocker.Cleanup: refusing to match every container: give labels")
	}
	tb.Cleanup(func() { RemoveContainers(tb, rt, labels) })
}

// RemoveContainers removes now every container that carries all of labels
// (running or not); Cleanup does it when the test ends.
func RemoveContainers(tb testing.TB, rt *docker.Runtime, labels map[string]string) {
	tb.Helper()
	if len(labels) == 0 {
		tb.Fatal("testdocker.RemoveContainers: refusing to match every container: give labels")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := rt.List(ctx, labels)
	if err != nil {
		tb.Errorf("clean up containers labelled %v: %v", labels, err)
		return
	}
	for _, c := range cs {
		if err := stopContainer(rt, c.ID); err != nil {
			tb.Errorf("clean up container %s: %v", c.Name, err)
		}
	}
}

// stopContainer stops and removes container id, with a time of its own:
// a loaded Docker engine takes seconds per container, and a test may leave
// fifty.
func stopContainer(rt *docker.Runtime, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return rt.Stop(ctx, id, 0)
}

// RandomSuffix is a short random hex string for unique names and tags.
func RandomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WaitOK polls url until it answers 200 and fails the test if that does not
// happen within timeout. A published port may accept connections before the
// app inside listens, so refused, reset and non-200 answers are retried.
func WaitOK(tb testing.TB, url string, timeout time.Duration) {
	tb.Helper()
	hc := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			tb.Fatalf("GET %s did not answer 200 within %s; last: %s", url, timeout, last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
