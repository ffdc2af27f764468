package engine

import (
	"errors"
	"strings"
	"testing"

	"github.com/clank-dev/clank/store"
)

func TestValidateConfig(t *testing.T) {
	good := store.Config{Image: "web:v1", Port: 8080, Env: map[string]string{"A": "1"}, Domains: []string{"Web.Example.com."}}
	good.Constraints = []string{"node.role==worker", "node.labels.zone!=c", "engine.labels.disk==ssd"}
	good.PlacementPrefs = []string{"spread=node.labels.zone"}
	cfg, err := ValidateConfig(good)
	if err != nil {
		t.Fatalf("good config refused: %v", err)
	}
	if cfg.Domains[0] != "web.example.com" || cfg.Health.Path != "/" || cfg.DeployTimeout != DefaultDeployTimeout {
		t.Fatalf("not normalized: %+v", cfg)
	}
	bad := []struct {
		name string
		mod  func(*store.Config)
	}{
		{"no image", func(c *store.Config) { c.Image = "" }},
		{"bad image", func(c *store.Config) { c.Image = "UPPER:case" }},
		{"port 0", func(c *store.Config) { c.Port = 0 }},
		{"port 70000", func(c *store.Config) { c.Port = 70000 }},
		{"env key", func(c *store.Config) { c.Env = map[string]string{"1BAD": "x"} }},
		{"domain", func(c *store.Config) { c.Domains = []string{"bad_domain!"} }},
		{"health path", func(c *store.Config) { c.Health.Path = "healthz" }},
		{"negative timeout", func(c *store.Config) { c.DeployTimeout = -1 }},
		{"cpus", func(c *store.Config) { c.CPUs = -1 }},
		{"memory", func(c *store.Config) { c.MemoryBytes = 1024 }},
		{"constraint without an operator", func(c *store.Config) { c.Constraints = []string{"node.role"} }},
		{"constraint on no node attribute", func(c *store.Config) { c.Constraints = []string{"role==worker"} }},
		{"constraint without a value", func(c *store.Config) { c.Constraints = []string{"node.role=="} }},
		{"placement preference not spread", func(c *store.Config) { c.PlacementPrefs = []string{"pack=node.labels.zone"} }},
		{"spread over nothing", func(c *store.Config) { c.PlacementPrefs = []string{"spread="} }},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			c.Env = map[string]string{}
			tc.mod(&c)
			if _, err := ValidateConfig(c); !errors.Is(err, ErrInvalid) {
				t.Fatalf("want ErrInvalid, got %v", err)
			}
		})
	}
}

func TestParseHelpers(t *testing.T) {
	if n, err := ParseMemory("256m"); err != nil || n != 256<<20 {
		t.Fatalf("256m = %d, %v", n, err)
	}
	for _, s := range []string{"lots", "-1m", "1k"} {
		if _, err := ParseMemory(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseMemory(%q) = %v, want ErrInvalid", s, err)
		}
	}
	if k, v, err := ParseEnv("DB_URL=postgres://x?a=b"); err != nil || k != "DB_URL" || v != "postgres://x?a=b" {
		t.Fatalf("ParseEnv: %q %q %v", k, v, err)
	}
	for _, s := range []string{"NOVALUE", "=x", "9X=1"} {
		if _, _, err := ParseEnv(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseEnv(%q) = %v, want ErrInvalid", s, err)
		}
	}
	for _, s := range []string{"web", "my-api2", "a"} {
		if err := ValidateServiceName(s); err != nil {
			t.Errorf("%q refused: %v", s, err)
		}
	}
	for _, s := range []string{"", "Web", "-x", "x-", "a_b", "1abc"} {
		if err := ValidateServiceName(s); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestOneLineReason(t *testing.T) {
	got := oneLine("container exited with code 2 right after start:\npanic: boom\n\n  goroutine 1 [running]:\r\n")
	if want := "container exited with code 2 right after start: | panic: boom | goroutine 1 [running]:"; got != want {
		t.Fatalf("oneLine = %q, want %q", got, want)
	}
	if long := oneLine(strings.Repeat("x", 1000)); len([]rune(long)) != maxReason {
		t.Fatalf("a long reason is %d runes, want %d", len([]rune(long)), maxReason)
	}
}
