package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/clank-dev/clank/store"
)

func TestTwoServersInOneProcess(t *testing.T) {
	ctx := context.Background()
	var servers []*Server
	for range 2 {
		s, err := NewServer(ctx, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		addr, err := s.Start("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if s.Addr() != addr.String() || !strings.HasPrefix(s.Addr(), "127.0.0.1:") {
			t.Fatalf("Addr() = %q, Start returned %s", s.Addr(), addr)
		}
		if _, err := s.Start("127.0.0.1:0"); !errors.Is(err, ErrServerStarted) {
			t.Fatalf("second Start: %v, want ErrServerStarted", err)
		}
		servers = append(servers, s)
	}
	d := pushRandom(t, servers[0].Addr()+"/web:v1", writer(servers[0]))
	chk := NewChecker(CheckerOptions{})
	defer chk.Close()
	if r := chk.checkOne(ctx, store.SourceRegistry, servers[0].Addr()+"/web:v1", d); r.State != store.AvailabilityAvailable {
		t.Fatalf("first registry: %+v", r)
	}
	if r := chk.checkOne(ctx, store.SourceRegistry, servers[1].Addr()+"/web:v1", d); r.State != store.AvailabilityMissing {
		t.Fatalf("second registry has its own storage, yet: %+v", r)
	}
	for _, s := range servers {
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if r := chk.checkOne(ctx, store.SourceRegistry, servers[0].Addr()+"/web:v1", d); r.State != store.AvailabilityUnknown {
		t.Fatalf("after Close: %+v, want unknown (unreachable)", r)
	}
}

func TestNewServerRejectsUnusableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(context.Background(), file); err == nil {
		t.Fatal("NewServer on a regular file: no error")
	}
	if _, err := NewServer(context.Background(), ""); err == nil {
		t.Fatal("NewServer with no directory: no error")
	}
}

// recordHandler keeps the levels of the records it gets.
type recordHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func TestUnknownManifestIsNotLoggedAsAnError(t *testing.T) {
	rec := &recordHandler{}
	SetLogger(slog.New(rec))
	defer SetLogger(nil)
	c := startClank(t)
	resp, err := http.Head("http://" + c.addr + "/v2/web/manifests/sha256:" + strings.Repeat("0", 64))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HEAD unknown manifest: %s", resp.Status)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.records) == 0 {
		t.Fatal("the 404 was not logged at all: want a debug record")
	}
	for _, r := range rec.records {
		if r.Level >= slog.LevelError {
			t.Errorf("logged at %s: %q", r.Level, r.Message)
		}
	}
}

func TestReferrers(t *testing.T) {
	c := startClank(t)
	repo := c.addr + "/web"
	img := ociImage(t)
	subject := pushImage(t, repo+":v1", img, c.auth())
	subjectDesc, err := partialDescriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	const sigType = "application/vnd.dev.clank.signature"
	sig := mutate.Subject(mutate.ConfigMediaType(ociImage(t), sigType), subjectDesc).(v1.Image)
	sigDigest := pushImage(t, repo, sig, c.auth())

	// The OCI-Subject header told the client not to keep the tag fallback.
	fallback := repo + ":" + strings.Replace(subject, ":", "-", 1)
	fallbackRef, err := name.ParseReference(fallback, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(fallbackRef); err == nil {
		t.Errorf("client wrote the referrers tag fallback %s: OCI-Subject was not answered", fallback)
	}
	raw, err := sig.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+c.addr+"/v2/web/manifests/"+sigDigest, bytes.NewReader(raw))
	req.Header.Set("Content-Type", string(types.OCIManifestSchema1))
	req.SetBasicAuth(c.srv.Credential().Username, c.srv.Credential().Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("OCI-Subject") != subject {
		t.Errorf("PUT of a manifest with a subject: %s, OCI-Subject %q; want 201 and %s", resp.Status, resp.Header.Get("OCI-Subject"), subject)
	}

	get := func(path string) (int, http.Header, ocispec.Index) {
		t.Helper()
		resp, err := http.Get("http://" + c.addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var idx ocispec.Index
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&idx); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		return resp.StatusCode, resp.Header, idx
	}
	status, hdr, idx := get("/v2/web/referrers/" + subject)
	if status != http.StatusOK || hdr.Get("Content-Type") != ocispec.MediaTypeImageIndex {
		t.Fatalf("referrers: %d %s", status, hdr.Get("Content-Type"))
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest.String() != sigDigest || idx.Manifests[0].ArtifactType != sigType ||
		idx.Manifests[0].Size != int64(len(raw)) || idx.Manifests[0].MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("referrers of %s: %+v, want the signature %s (%s)", subject, idx.Manifests, sigDigest, sigType)
	}
	status, hdr, idx = get("/v2/web/referrers/" + subject + "?artifactType=application/other")
	if status != http.StatusOK || len(idx.Manifests) != 0 || hdr.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered referrers: %d %+v %q", status, idx.Manifests, hdr.Get("OCI-Filters-Applied"))
	}
	status, _, idx = get("/v2/nothing/here/referrers/" + subject)
	if status != http.StatusOK || idx.Manifests == nil || len(idx.Manifests) != 0 {
		t.Fatalf("referrers in an unknown repository: %d %+v, want 200 and an empty list", status, idx.Manifests)
	}
	if status, _, _ = get("/v2/web/referrers/sha256:nothex"); status != http.StatusBadRequest {
		t.Fatalf("referrers of an invalid digest: %d, want 400", status)
	}

	// go-containerregistry's client sees the same through the API.
	subjectRef, err := name.NewDigest(repo+"@"+subject, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	ri, err := remote.Referrers(subjectRef)
	if err != nil {
		t.Fatal(err)
	}
	im, err := ri.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("remote.Referrers: %+v, %v", im, err)
	}
}
