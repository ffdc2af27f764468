package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/store"
)

func TestDiff(t *testing.T) {
	from := store.Config{
		Image: "web:v2", Port: 8080,
		Env:     map[string]string{"KEEP": "same", "GONE": "secret-a", "CHANGED": "secret-b"},
		Domains: []string{"web.localhost"},
		Health:  store.HealthCheck{Path: "/healthz", Interval: time.Second, Timeout: 5 * time.Second},
		CPUs:    1, MemoryBytes: 256 << 20, DeployTimeout: time.Minute,
	}
	to := from
	to.Image = "web:v1"
	to.Env = map[string]string{"KEEP": "same", "CHANGED": "secret-c", "NEW": "secret-d"}
	to.Port = 9090
	to.CPUs = 0.5
	to.Domains = []string{"web.localhost", "old.example.com"}
	to.Constraints = []string{"node.role==worker"}
	to.PlacementPrefs = []string{"spread=node.labels.zone"}

	changes := Diff(from, to, "sha256:"+strings.Repeat("b", 64), "sha256:"+strings.Repeat("a", 64))
	got := map[string]Change{}
	for _, c := range changes {
		got[c.Field+"/"+c.Key] = c
		for _, secret := range []string{"secret-a", "secret-b", "secret-c", "secret-d"} {
			if strings.Contains(c.From+c.To+c.String(), secret) {
				t.Fatalf("env value %q leaked in %+v", secret, c)
			}
		}
	}
	want := map[string]string{
		"image/":      "web:v2@sha256:bbbbbbbbbbbb -> web:v1@sha256:aaaaaaaaaaaa",
		"env/GONE":    "removed",
		"env/CHANGED": "changed",
		"env/NEW":     "added",
		"port/":       "8080 -> 9090",
		"cpus/":       "1 -> 0.5",
		"domains/":    "web.localhost -> web.localhost,old.example.com",
		"placement/":  "- -> node.role==worker,spread=node.labels.zone",
	}
	if len(changes) != len(want) {
		t.Fatalf("got %d changes %+v, want %d", len(changes), changes, len(want))
	}
	for k, w := range want {
		c, ok := got[k]
		if !ok {
			t.Fatalf("missing change %s in %+v", k, changes)
		}
		if c.Field == "env" {
			if c.Op != w {
				t.Errorf("%s: op %q, want %q", k, c.Op, w)
			}
		} else if s := c.From + " -> " + c.To; s != w {
			t.Errorf("%s: %q, want %q", k, s, w)
		}
	}
	if len(Diff(from, from, "sha256:x", "sha256:x")) != 0 {
		t.Fatal("identical snapshots must have no changes")
	}
}
