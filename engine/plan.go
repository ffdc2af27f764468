package engine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/clank-dev/clank/store"
)

// Change is one difference between the current ACTIVE deployment and what an
// action would run. Env changes name the key only: values are secrets.
type Change struct {
	Field string // image, env, port, health_check, deploy_timeout, cpus, memory, domains
	Key   string // env key
	Op    string // env: added | removed | changed
	From  string
	To    string
}

func (c Change) String() string {
	if c.Field == "env" {
		return fmt.Sprintf("env %s %s", c.Key, c.Op)
	}
	return fmt.Sprintf("%s: %s -> %s", c.Field, c.From, c.To)
}

// Plan is what an action would do: the new deployment's snapshot, its source,
// what changes against the current ACTIVE deployment, or why it is refused.
type Plan struct {
	Kind        store.Kind
	Service     store.Service
	Target      *store.Deployment // the deployment rolled back to or redeployed
	Current     *store.Deployment // the current ACTIVE deployment
	Config      store.Config      // what the new deployment will run with
	ImageDigest string            // pinned digest, "" if the image must be pulled first
	ImageSource string
	Changes     []Change
	// SchemaChange is set when a rollback or redeploy runs an image whose
	// schema label differs from the ACTIVE one's; unless the request allows
	// it, Refusal says so.
	SchemaChange *SchemaChange
	Refusal      error // non-nil: the action would be refused, nothing would be created
}

// Diff lists what changes from one snapshot to another. Env values never
// appear in it; a changed value shows as "changed".
func Diff(from, to store.Config, fromDigest, toDigest string) []Change {
	var out []Change
	add := func(field, a, b string) {
		if a != b {
			out = append(out, Change{Field: field, From: a, To: b})
		}
	}
	add("image", imageLabel(from.Image, fromDigest), imageLabel(to.Image, toDigest))
	for _, k := range unionKeys(from.Env, to.Env) {
		a, inA := from.Env[k]
		b, inB := to.Env[k]
		switch {
		case !inA:
			out = append(out, Change{Field: "env", Key: k, Op: "added"})
		case !inB:
			out = append(out, Change{Field: "env", Key: k, Op: "removed"})
		case a != b:
			out = append(out, Change{Field: "env", Key: k, Op: "changed"})
		}
	}
	add("port", strconv.Itoa(from.Port), strconv.Itoa(to.Port))
	add("health_check", healthLabel(from.Health), healthLabel(to.Health))
	add("deploy_timeout", from.DeployTimeout.String(), to.DeployTimeout.String())
	add("cpus", cpusLabel(from.CPUs), cpusLabel(to.CPUs))
	add("memory", FormatMemory(from.MemoryBytes), FormatMemory(to.MemoryBytes))
	add("domains", strings.Join(from.Domains, ","), strings.Join(to.Domains, ","))
	add("placement", placementLabel(from), placementLabel(to))
	return out
}

// placementLabel is a snapshot's Swarm placement: its constraints and
// preferences, "-" for none.
func placementLabel(c store.Config) string {
	if len(c.Constraints)+len(c.PlacementPrefs) == 0 {
		return "-"
	}
	return strings.Join(append(slices.Clone(c.Constraints), c.PlacementPrefs...), ",")
}

func imageLabel(ref, digest string) string {
	if digest == "" {
		return ref
	}
	return ref + "@" + ShortDigest(digest)
}

// ShortDigest shortens sha256:0123456789abcdef... to sha256:0123456789ab.
func ShortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return algo + ":" + hex[:12]
}

func healthLabel(h store.HealthCheck) string {
	return fmt.Sprintf("GET %s every %s, timeout %s", h.Path, h.Interval, h.Timeout)
}

func cpusLabel(c float64) string {
	if c == 0 {
		return "none"
	}
	return strconv.FormatFloat(c, 'g', -1, 64)
}

func unionKeys(a, b map[string]string) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
