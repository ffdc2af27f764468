package daemon

import (
	"testing"

	"github.com/clank-dev/clank/store"
)

// GC keeps a digest any deployment recorded, whatever host its image was
// pushed under and however the engine classified it (a LAN name is not
// recognised as the Clank registry, so its deployments say "external").
func TestKeepRecordedIgnoresHostAndSource(t *testing.T) {
	recorded := []store.ImageRef{
		{Source: store.SourceRegistry, Image: "127.0.0.1:5000/web:v1", Digest: "sha256:aa"},
		{Source: store.SourceRegistry, Image: "localhost:5000/web:v2", Digest: "sha256:bb"},
		{Source: store.SourceExternal, Image: "build-box.lan:5000/web:v3", Digest: "sha256:cc"},
		{Source: store.SourceLocal, Image: "clank/web:abc", Digest: "sha256:dd"},
	}
	keep := keepRecorded(recorded)
	for _, c := range []struct {
		repo, digest string
		want         bool
	}{
		{"web", "sha256:aa", true},
		{"web", "sha256:bb", true},
		{"web", "sha256:cc", true},
		{"other/repo", "sha256:cc", true}, // the same content under another name
		{"web", "sha256:ee", false},
	} {
		if got := keep(c.repo, c.digest); got != c.want {
			t.Errorf("keep(%s, %s) = %v, want %v", c.repo, c.digest, got, c.want)
		}
	}
}
