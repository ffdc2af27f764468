package e2e

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	dockerregistry "github.com/moby/moby/api/types/registry"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
)

// Registry GC after pushing under localhost:PORT (not the 127.0.0.1:PORT the
// registry listens on): the digest a deployment recorded stays, blobs and
// all, so that a rollback to it pulls it after its local copy is gone; a
// digest nobody recorded goes.
func TestRegistryGCKeepsWhatADeploymentRecorded(t *testing.T) {
	rt := testdocker.Require(t)
	d := startDaemonWithRegistry(t)
	_, port, _ := net.SplitHostPort(d.registry())
	host := "localhost:" + port
	// What the daemon pulled by digest under host has no tag to remove it by.
	testdocker.CleanupRegistry(t, rt, host)
	auth := dockerregistry.AuthConfig{Username: "clank", Password: strings.TrimSpace(d.ok("registry", "login", "--print-password")), ServerAddress: host}
	ctx := context.Background()
	pushAs := func(src, ref string) {
		t.Helper()
		if err := rt.TagImage(ctx, src, ref); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { testdocker.RemoveImage(t, rt, ref) })
		if err := rt.PushImage(ctx, ref, auth, nil); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	v1, v2 := testdocker.SampleImage(t, rt, "v1"), testdocker.SampleImage(t, rt, "v2")
	tag := host + "/web:stable"
	pushAs(v1, tag)
	d.ok("service", "create", "web", "--image", tag, "--port", "8080", "--health-path", "/healthz")
	d.ok("deploy", "--service", "web")
	d1 := deploymentsJSON(t, d)[0]
	recorded := d1["image_digest"].(string)
	if d1["image_source"] != "registry" || !strings.HasPrefix(recorded, "sha256:") {
		t.Fatalf("#1: source %v digest %v", d1["image_source"], recorded)
	}
	// The tag moves on (CI pushed again) and #2 deploys it: #1's digest is
	// untagged in the registry now. Another tag's old digest is garbage.
	pushAs(v2, tag)
	d.ok("deploy", "--service", "web")
	pushAs(testdocker.SampleImage(t, rt, "v3"), host+"/web:scratch")
	pushAs(v2, host+"/web:scratch")

	// #1's local copy goes, so that the rollback must pull it.
	waitFor(t, 30*time.Second, func() bool { return deploymentsJSON(t, d)[1]["status"] == "INACTIVE" })
	pinned := host + "/web@" + recorded
	t.Cleanup(func() { testdocker.RemoveImage(t, rt, pinned) }) // the rollback pulls it again
	if err := rt.RemoveImage(ctx, pinned); err != nil && !errors.Is(err, engine.ErrImageNotFound) {
		t.Fatal(err)
	}
	if _, err := rt.InspectImage(ctx, pinned); !errors.Is(err, engine.ErrImageNotFound) {
		t.Fatalf("#1's image is still local: %v", err)
	}

	out := d.ok("registry", "gc")
	if strings.Contains(out, recorded) || !strings.Contains(out, "removed web@sha256:") {
		t.Fatalf("registry gc removed the recorded digest %s, or nothing:\n%s", recorded, out)
	}
	out = d.ok("rollback", "--service", "web")
	if !strings.Contains(out, "ACTIVE") {
		t.Fatalf("rollback after gc:\n%s", out)
	}
	if body := d.mustGet("web.localhost", "/"); body != "hello from v1" {
		t.Fatalf("after the rollback web answers %q", body)
	}
}
