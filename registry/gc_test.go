package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/clank-dev/clank/store"
)

// pullable pulls ref by digest completely (manifest, config, every layer).
func pullable(tb testing.TB, ref string) error {
	tb.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		tb.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		return err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func blobStatus(tb testing.TB, addr, repo string, d v1.Hash) int {
	tb.Helper()
	resp, err := http.Head("http://" + addr + "/v2/" + repo + "/blobs/" + d.String())
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func ociImage(tb testing.TB) v1.Image {
	tb.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		tb.Fatal(err)
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON)
}

func TestGCKeepsWhatDeploymentsNeed(t *testing.T) {
	c := startClank(t)
	c.srv.gcQuiet = 0
	dockerConfig(t, nil)
	repo := c.addr + "/web"

	// kept: deployed, its tag since pushed again. removed: same, not deployed.
	kept := pushRandom(t, repo+":v1", c.auth())
	removedImg, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	removed := pushImage(t, repo+":v2", removedImg, c.auth())
	tagged := pushRandom(t, repo+":v1", c.auth()) // moves v1 off kept
	deleteRef(t, repo+":v2", c.auth())            // removed is now untagged
	// An index kept by a deployment keeps its platform manifests.
	idx, err := random.Index(64, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	idxHash, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	idxDigest := idxHash.String()
	idxRef, err := name.ParseReference(repo+"@"+idxDigest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(idxRef, idx, c.auth()); err != nil {
		t.Fatal(err)
	}
	// A signature of the kept image (an OCI referrer) stays with it.
	keptRef, err := name.ParseReference(repo+"@"+kept, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	keptImg, err := remote.Image(keptRef)
	if err != nil {
		t.Fatal(err)
	}
	keptDesc, err := partialDescriptor(keptImg)
	if err != nil {
		t.Fatal(err)
	}
	sig := mutate.Subject(ociImage(t), keptDesc).(v1.Image)
	sigDigest := pushImage(t, repo, sig, c.auth())
	// A different repository with only an untagged, unneeded manifest.
	other := pushRandom(t, c.addr+"/batch", c.auth())

	keep := func(r, d string) bool {
		return r == "web" && (d == kept || d == idxDigest)
	}
	res, err := c.srv.GC(context.Background(), keep)
	if err != nil {
		t.Fatalf("GC: %v", err)
	}
	wantRemoved := []ManifestRef{{Repo: "batch", Digest: other}, {Repo: "web", Digest: removed}}
	if !reflect.DeepEqual(res.ManifestsRemoved, wantRemoved) {
		t.Errorf("removed %+v, want %+v", res.ManifestsRemoved, wantRemoved)
	}
	// web: kept, tagged, the index and its 2 children, the signature.
	if res.ManifestsKept != 6 {
		t.Errorf("kept %d manifests, want 6", res.ManifestsKept)
	}
	if res.BlobsRemoved < 4 { // 2 manifests, their configs and layers
		t.Errorf("removed %d blobs, want at least 4", res.BlobsRemoved)
	}

	for _, d := range []string{kept, tagged, sigDigest} {
		if err := pullable(t, repo+"@"+d); err != nil {
			t.Errorf("%s after GC: %v, want it pullable", d, err)
		}
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		if err := pullable(t, repo+"@"+m.Digest.String()); err != nil {
			t.Errorf("index child %s after GC: %v", m.Digest, err)
		}
	}
	chk := NewChecker(CheckerOptions{})
	defer chk.Close()
	if r := chk.checkOne(context.Background(), store.SourceRegistry, repo+":v2", removed); r.State != store.AvailabilityMissing {
		t.Errorf("removed manifest after GC: %+v, want missing", r)
	}
	if err := pullable(t, repo+"@"+removed); err == nil {
		t.Errorf("removed manifest still pullable after GC")
	}
	layers, err := removedImg.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layerDigest, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	if st := blobStatus(t, c.addr, "web", layerDigest); st != http.StatusNotFound {
		t.Errorf("layer of the removed image: HTTP %d, want 404 (swept)", st)
	}

	// A second GC has nothing left to do.
	res, err = c.srv.GC(context.Background(), keep)
	if err != nil || len(res.ManifestsRemoved) != 0 || res.BlobsRemoved != 0 {
		t.Errorf("second GC = %+v, %v; want nothing removed", res, err)
	}
}

func partialDescriptor(img v1.Image) (v1.Descriptor, error) {
	d, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}, nil
}

// GC must not sweep while a push is in flight: its blobs are not referenced
// by any manifest yet.
func TestGCWaitsForPushesInFlight(t *testing.T) {
	c := startClank(t)
	c.srv.gcQuiet = 0

	cred := c.srv.Credential()
	start, err := http.NewRequest(http.MethodPost, "http://"+c.addr+"/v2/web/blobs/uploads/", nil)
	if err != nil {
		t.Fatal(err)
	}
	start.SetBasicAuth(cred.Username, cred.Password)
	resp, err := http.DefaultClient.Do(start)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s", resp.Status)
	}
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = "http://" + c.addr + loc
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequest(http.MethodPatch, loc, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.SetBasicAuth(cred.Username, cred.Password)
	patched := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		patched <- err
	}()
	if _, err := pw.Write([]byte("half a layer")); err != nil {
		t.Fatal(err)
	}
	// Wait until the registry is serving the PATCH (it holds the write gate).
	for deadline := time.Now().Add(5 * time.Second); c.srv.writes.TryLock(); {
		c.srv.writes.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("the PATCH never reached the registry")
		}
		time.Sleep(5 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := c.srv.GC(ctx, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GC during a push: err = %v, want it to wait and give up with the context", err)
	}

	pw.Close()
	if err := <-patched; err != nil {
		t.Fatalf("upload: %v", err)
	}
	if _, err := c.srv.GC(context.Background(), nil); err != nil {
		t.Fatalf("GC after the push: %v", err)
	}
}

// The quiet period: GC waits until no write has finished for a while.
func TestGCWaitsForQuiet(t *testing.T) {
	c := startClank(t)
	c.srv.gcQuiet = 400 * time.Millisecond
	pushRandom(t, c.addr+"/web:v1", c.auth())
	// Measured from the push's last write, not from the call: on a loaded
	// machine the call may come a good while after it.
	last := time.Unix(0, c.srv.lastWrite.Load())
	if _, err := c.srv.GC(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if after := time.Since(last); after < c.srv.gcQuiet {
		t.Errorf("GC ended %s after the last write: want it to wait for the quiet period (%s)", after, c.srv.gcQuiet)
	}
}
