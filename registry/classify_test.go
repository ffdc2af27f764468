package registry

import (
	"testing"

	"github.com/clank-dev/clank/store"
)

// The one rule for "is this the Clank registry", and where the engine pushes
// to it, as every part of Clank asks them.
func TestIsClankRegistryAndPushHost(t *testing.T) {
	for _, c := range []struct {
		host, clank string
		want        bool
	}{
		{"127.0.0.1:5000", "127.0.0.1:5000", true},
		{"localhost:5000", "127.0.0.1:5000", true},
		{"[::1]:5000", "127.0.0.1:5000", true},
		{"localhost:5000", "0.0.0.0:5000", true},
		{"127.0.0.1:5001", "127.0.0.1:5000", false},
		{"build-box.lan:5000", "127.0.0.1:5000", false},
		{"127.0.0.1:5000", "", false},
		{"index.docker.io", "127.0.0.1:5000", false},
	} {
		if got := IsClankRegistry(c.host, c.clank); got != c.want {
			t.Errorf("IsClankRegistry(%q, %q) = %v, want %v", c.host, c.clank, got, c.want)
		}
	}
	for addr, want := range map[string]string{
		"127.0.0.1:5000": "127.0.0.1:5000", "0.0.0.0:5000": "127.0.0.1:5000", ":5000": "127.0.0.1:5000",
		"[::]:5000": "127.0.0.1:5000", "10.0.0.7:5000": "10.0.0.7:5000",
	} {
		if got := PushHost(addr); got != want {
			t.Errorf("PushHost(%q) = %q, want %q", addr, got, want)
		}
	}
	im := Images{Clank: "127.0.0.1:5000"}
	for ref, want := range map[string]string{
		"localhost:5000/web:v1": store.SourceRegistry, "127.0.0.1:5000/web@sha256:" + zeros64: store.SourceRegistry,
		"nginx:1.27": store.SourceExternal, "ghcr.io/acme/api:v2": store.SourceExternal, "Not A Ref": store.SourceExternal,
	} {
		if got := im.Source(ref); got != want {
			t.Errorf("Source(%q) = %q, want %q", ref, got, want)
		}
	}
}

const zeros64 = "0000000000000000000000000000000000000000000000000000000000000000"
