package engine

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"

	"github.com/distribution/reference"
	units "github.com/docker/go-units"

	"github.com/clank-dev/clank/store"
)

// Defaults for a service's configuration and the engine's timeouts.
const (
	DefaultHealthPath     = "/"
	DefaultHealthInterval = time.Second
	DefaultHealthTimeout  = 5 * time.Second
	DefaultDeployTimeout  = 60 * time.Second
	DefaultDrainTimeout   = 30 * time.Second
	DefaultStopGrace      = 10 * time.Second
	// DomainSuffix makes a service's default domain: <name>.localhost.
	DomainSuffix = ".localhost"
	// minMemory is the smallest memory limit the Docker engine accepts.
	minMemory = 6 * 1024 * 1024
)

var (
	serviceNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,61}[a-z0-9]$|^[a-z]$`)
	envKeyRe      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	domainLabelRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	gitBranchRe   = regexp.MustCompile(`^[A-Za-z0-9._/@-]+$`)
)

// ValidateServiceName checks a service name: lower-case letters, digits and
// dashes, starting with a letter, at most 63 characters (it becomes a domain label).
func ValidateServiceName(name string) error {
	if !serviceNameRe.MatchString(name) {
		return &invalid{fmt.Sprintf("invalid service name %q: use lower-case letters, digits and dashes, starting with a letter (at most 63)", name)}
	}
	return nil
}

// ParseEnv splits one K=V argument.
func ParseEnv(kv string) (key, value string, err error) {
	key, value, ok := strings.Cut(kv, "=")
	if !ok {
		return "", "", &invalid{fmt.Sprintf("invalid env %q: want KEY=VALUE", key)}
	}
	return key, value, ValidateEnvKey(key)
}

// ValidateEnvKey checks an environment variable name.
func ValidateEnvKey(key string) error {
	if !envKeyRe.MatchString(key) {
		return &invalid{fmt.Sprintf("invalid env key %q: use letters, digits and _, not starting with a digit", key)}
	}
	return nil
}

// ParseMemory reads a memory size such as 256m, 1g or 512MiB; "0" or "" means no limit.
func ParseMemory(s string) (int64, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	n, err := units.RAMInBytes(s)
	if err != nil || n < 0 {
		return 0, &invalid{fmt.Sprintf("invalid memory size %q: use a number with a unit, like 256m or 1g", s)}
	}
	if n < minMemory {
		return 0, &invalid{fmt.Sprintf("invalid memory size %q: the minimum is 6m", s)}
	}
	return n, nil
}

// FormatMemory prints a memory limit the way ParseMemory reads it.
func FormatMemory(n int64) string {
	if n == 0 {
		return "none"
	}
	return units.BytesSize(float64(n))
}

// ValidateDomain checks that d is a host name and returns it in its normal
// form (store.NormalizeDomain).
func ValidateDomain(d string) (string, error) {
	d = store.NormalizeDomain(d)
	if d == "" || len(d) > 253 {
		return "", &invalid{fmt.Sprintf("invalid domain %q", d)}
	}
	for _, label := range strings.Split(d, ".") {
		if !domainLabelRe.MatchString(label) {
			return "", &invalid{fmt.Sprintf("invalid domain %q: labels are letters, digits and dashes", d)}
		}
	}
	return d, nil
}

// ValidateGitBranch checks a branch name for --git-branch: what git accepts
// as a branch, less the odd corners (no "..", "//", "@{", leading "-" or
// "/", trailing "/", "." or ".lock").
func ValidateGitBranch(b string) error {
	bad := b == "" || len(b) > 200 || !gitBranchRe.MatchString(b) || strings.HasPrefix(b, "-") ||
		strings.HasPrefix(b, "/") || strings.HasSuffix(b, "/") || strings.HasSuffix(b, ".") ||
		strings.HasSuffix(b, ".lock") || strings.Contains(b, "..") || strings.Contains(b, "//") || strings.Contains(b, "@{")
	if bad {
		return &invalid{fmt.Sprintf("invalid git branch %q: use letters, digits, '.', '_', '-' and '/'", b)}
	}
	return nil
}

// ValidateImage checks an image reference (repo[:tag][@digest]).
func ValidateImage(ref string) error {
	if ref == "" {
		return &invalid{"an image is required (--image REF)"}
	}
	if _, err := reference.ParseNormalizedNamed(ref); err != nil {
		return &invalid{fmt.Sprintf("invalid image reference %q: %v", ref, err)}
	}
	return nil
}

// ValidateConfig checks a whole service configuration and fills in defaults.
// It returns the normalized config.
func ValidateConfig(cfg store.Config) (store.Config, error) {
	if err := ValidateImage(cfg.Image); err != nil {
		return cfg, err
	}
	if cfg.Port < 1 || cfg.Port > 65535 {
		return cfg, &invalid{fmt.Sprintf("invalid port %d: want 1-65535", cfg.Port)}
	}
	env := make(map[string]string, len(cfg.Env))
	for k, v := range cfg.Env {
		if err := ValidateEnvKey(k); err != nil {
			return cfg, err
		}
		env[k] = v
	}
	cfg.Env = env
	seen := map[string]bool{}
	domains := make([]string, 0, len(cfg.Domains))
	for _, d := range cfg.Domains {
		n, err := ValidateDomain(d)
		if err != nil {
			return cfg, err
		}
		if !seen[n] {
			seen[n] = true
			domains = append(domains, n)
		}
	}
	cfg.Domains = domains
	if cfg.Health.Path == "" {
		cfg.Health.Path = DefaultHealthPath
	}
	if !strings.HasPrefix(cfg.Health.Path, "/") {
		return cfg, &invalid{fmt.Sprintf("invalid health path %q: it must start with /", cfg.Health.Path)}
	}
	if cfg.Health.Interval == 0 {
		cfg.Health.Interval = DefaultHealthInterval
	}
	if cfg.Health.Timeout == 0 {
		cfg.Health.Timeout = DefaultHealthTimeout
	}
	if cfg.DeployTimeout == 0 {
		cfg.DeployTimeout = DefaultDeployTimeout
	}
	for name, d := range map[string]time.Duration{"health interval": cfg.Health.Interval, "health timeout": cfg.Health.Timeout, "deploy timeout": cfg.DeployTimeout} {
		if d < 0 {
			return cfg, &invalid{fmt.Sprintf("invalid %s %s: it must be positive", name, d)}
		}
	}
	if cfg.CPUs < 0 || cfg.CPUs > 1024 {
		return cfg, &invalid{fmt.Sprintf("invalid cpus %g: want a positive number like 0.5", cfg.CPUs)}
	}
	if cfg.MemoryBytes != 0 && cfg.MemoryBytes < minMemory {
		return cfg, &invalid{fmt.Sprintf("invalid memory %d bytes: the minimum is 6m", cfg.MemoryBytes)}
	}
	for _, c := range cfg.Constraints {
		if err := ValidateConstraint(c); err != nil {
			return cfg, err
		}
	}
	for _, p := range cfg.PlacementPrefs {
		if err := ValidatePlacementPref(p); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// ValidateConstraint checks a Swarm placement constraint, as `docker service
// create --constraint` takes it: "node.role==worker", "node.labels.zone!=b".
func ValidateConstraint(c string) error {
	key, value, ok := strings.Cut(c, "==")
	if !ok {
		key, value, ok = strings.Cut(c, "!=")
	}
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if !ok || value == "" || !(strings.HasPrefix(key, "node.") || strings.HasPrefix(key, "engine.labels.")) {
		return &invalid{fmt.Sprintf("invalid constraint %q: want node.ATTRIBUTE==VALUE or !=VALUE (node.role==worker, node.labels.zone==a)", c)}
	}
	return nil
}

// ValidatePlacementPref checks a Swarm placement preference, as `docker
// service create --placement-pref` takes it: "spread=node.labels.zone".
func ValidatePlacementPref(p string) error {
	d, ok := strings.CutPrefix(p, "spread=")
	if !ok || strings.TrimSpace(d) == "" || strings.ContainsAny(d, " =") {
		return &invalid{fmt.Sprintf("invalid placement preference %q: want spread=DESCRIPTOR (spread=node.labels.zone)", p)}
	}
	return nil
}

// ValidatePolicy checks a service's watch policy: a window of 0 turns the
// watch (and the warm standby) off, a 5xx ratio of 0 turns that rule off.
func ValidatePolicy(p store.Policy) error {
	switch {
	case p.WatchWindow < 0:
		return &invalid{fmt.Sprintf("invalid watch window %s: 0 (off) or more", p.WatchWindow)}
	case p.WatchFailures < 1:
		return &invalid{fmt.Sprintf("invalid watch failures %d: at least 1", p.WatchFailures)}
	case p.Watch5xx < 0 || p.Watch5xx > 1 || math.IsNaN(p.Watch5xx):
		return &invalid{fmt.Sprintf("invalid watch 5xx ratio %g: from 0 (off) to 1", p.Watch5xx)}
	}
	return nil
}
