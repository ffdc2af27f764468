package docker_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
	"github.com/moby/moby/api/types/registry"
	"github.com/sirupsen/logrus"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/docker"
	"github.com/clank-dev/clank/internal/testdocker"
)

// startRegistry serves a real distribution registry on 127.0.0.1 (which the
// engine treats as insecure-allowed) for the test, and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	logrus.SetOutput(io.Discard)
	secret := make([]byte, 16)
	rand.Read(secret)
	cfg := &configuration.Configuration{
		Version: configuration.CurrentVersion,
		Storage: configuration.Storage{"filesystem": configuration.Parameters{"rootdirectory": t.TempDir()}},
	}
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	cfg.Log.AccessLog.Disabled = true
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	app := handlers.NewApp(ctx, cfg)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestPushAndPullThroughALoopbackRegistry(t *testing.T) {
	rt := testdocker.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr := startRegistry(t)

	tiny := buildTiny(t, rt, "FROM scratch\nCOPY hello.txt /\n")
	built, err := rt.InspectImage(ctx, tiny)
	if err != nil {
		t.Fatal(err)
	}
	id := built.ID
	ref := addr + "/clank-test/tiny:" + testdocker.RandomSuffix()
	if err := rt.TagImage(ctx, tiny, ref); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testdocker.RemoveImage(t, rt, ref) })

	var out strings.Builder
	if err := rt.PushImage(ctx, ref, registry.AuthConfig{}, &out); err != nil {
		t.Fatalf("PushImage: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "digest: sha256:") {
		t.Errorf("push output %q does not report the digest", out.String())
	}
	info, err := rt.InspectImage(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.RepoDigests) != 1 || !strings.HasPrefix(info.RepoDigests[0], addr+"/clank-test/tiny@sha256:") {
		t.Fatalf("after push, RepoDigests = %v; want the registry's digest", info.RepoDigests)
	}
	pinned := info.RepoDigests[0]

	// Drop the local copy, then pull it back by digest, as a rollback would.
	if err := rt.RemoveImage(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.InspectImage(ctx, pinned); !errors.Is(err, engine.ErrImageNotFound) {
		t.Fatalf("after RemoveImage, InspectImage(%s) = %v; want ErrImageNotFound", pinned, err)
	}
	if err := rt.PullImage(ctx, pinned); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testdocker.RemoveImage(t, rt, pinned) })
	if got, err := rt.InspectImage(ctx, pinned); err != nil || got.ID != id {
		t.Errorf("pulled %s = %+v, %v; want image %s", pinned, got, err, id)
	}

	t.Run("failures", func(t *testing.T) {
		missing := addr + "/clank-test/tiny:never-pushed"
		err := rt.PullImage(ctx, missing)
		if err == nil || !strings.Contains(err.Error(), "pull image "+missing) || !strings.Contains(err.Error(), "not found") {
			t.Errorf("PullImage(never pushed) = %v; want a not-found error naming the image", err)
		}

		nowhere := "127.0.0.1:1/clank-test/tiny:x"
		if err := rt.TagImage(ctx, tiny, nowhere); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { testdocker.RemoveImage(t, rt, nowhere) })
		err = rt.PushImage(ctx, nowhere, registry.AuthConfig{}, nil)
		var streamErr *docker.StreamError
		if !errors.As(err, &streamErr) || !strings.Contains(err.Error(), "push image "+nowhere) {
			t.Errorf("PushImage to a closed port = %v; want a StreamError naming the image", err)
		}
	})
}
