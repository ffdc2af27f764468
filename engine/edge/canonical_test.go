package edge

import (
	"testing"

	"github.com/clank-dev/clank/store"
)

// A request's Host finds the route of the domain as the store owns it:
// the router strips the port and asks the store's rule for the rest.
func TestCanonicalHostIsTheStoresForm(t *testing.T) {
	for host, domain := range map[string]string{
		"Web.Example.COM.:8080": "Web.Example.COM.",
		"web.localhost":         "WEB.localhost",
		"[::1]:80":              "[::1]",
		"shop.example.com.":     " shop.example.com",
	} {
		if got, want := CanonicalHost(host), store.NormalizeDomain(domain); got != want {
			t.Errorf("CanonicalHost(%q) = %q, the store owns %q as %q", host, got, domain, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { CanonicalHost("web.localhost:8080") }); n != 0 {
		t.Errorf("CanonicalHost of a lower-case host allocates %v times", n)
	}
}
