package conformance

import (
	"bufio"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/registry"
)

// Suite is the conformance suite, pinned: a newer one may add or rename checks.
const Suite = "github.com/opencontainers/distribution-spec/conformance@v0.0.0-20260831232431-97274622c111"

const baselineFile = "baseline.txt"

// The suite's settings: every API family on, OCI 1.1.
var suiteEnv = []string{
	"OCI_TLS=disabled",
	"OCI_REPO1=conformance/repo1",
	"OCI_REPO2=conformance/repo2",
	"OCI_VERSION=1.1",
	"OCI_LOG=error",
	"OCI_API_PULL=true",
	"OCI_API_PUSH=true",
	"OCI_API_BLOBS_DELETE=true",
	"OCI_API_MANIFESTS_DELETE=true",
	"OCI_API_TAGS_DELETE=true",
	"OCI_API_TAGS_LIST=true",
	"OCI_API_REFERRER=true",
}

// junit is the part of the suite's junit.xml that is read here.
type junit struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Errors   int `xml:"errors,attr"`
	Skipped  int `xml:"skipped,attr"`
	Disabled int `xml:"disabled,attr"`
	Suites   []struct {
		Cases []struct {
			Name   string `xml:"name,attr"`
			Status string `xml:"status,attr"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// checks lists every leaf check by a stable name (a repeated name gets " #2",
// " #3", ... in order of appearance) with its status.
func (j junit) checks() map[string]string {
	out := map[string]string{}
	seen := map[string]int{}
	for _, s := range j.Suites {
		for _, c := range s.Cases {
			seen[c.Name]++
			key := c.Name
			if n := seen[c.Name]; n > 1 {
				key = fmt.Sprintf("%s #%d", c.Name, n)
			}
			out[key] = c.Status
		}
	}
	return out
}

func TestConformance(t *testing.T) {
	if os.Getenv("CLANK_CONFORMANCE") != "1" {
		t.Skip("the OCI conformance suite runs with CLANK_CONFORMANCE=1 (registry/conformance/run.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	srv, err := registry.NewServer(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	results := os.Getenv("CLANK_CONFORMANCE_RESULTS")
	if results == "" {
		results = t.TempDir()
	}
	// go run on module@version ignores Clank's go.mod; running it from the
	// results directory keeps its files there.
	cmd := exec.CommandContext(ctx, "go", "run", Suite)
	cmd.Dir = results
	// Pushes and deletes need the registry's credential; the suite follows
	// the Bearer challenge to the token endpoint with it.
	cred := srv.Credential()
	cmd.Env = append(append(os.Environ(), suiteEnv...),
		"OCI_REGISTRY="+addr.String(),
		"OCI_USERNAME="+cred.Username,
		"OCI_PASSWORD="+cred.Password,
		"OCI_RESULTS_DIR="+results,
	)
	out, runErr := cmd.CombinedOutput()
	// The suite exits 1 when any check fails; junit.xml is the verdict.
	raw, err := os.ReadFile(filepath.Join(results, "junit.xml"))
	if err != nil {
		t.Fatalf("the suite wrote no junit.xml (%v): %v\n%s", runErr, err, out)
	}
	var ju junit
	if err := xml.Unmarshal(raw, &ju); err != nil {
		t.Fatalf("parse junit.xml: %v", err)
	}
	checks := ju.checks()
	passing := map[string]bool{}
	for name, status := range checks {
		if status == "passed" {
			passing[name] = true
		}
	}
	passed := ju.Tests - ju.Failures - ju.Errors - ju.Skipped - ju.Disabled
	fmt.Printf("OCI conformance: %d of %d checks pass (%d fail, %d errors, %d skipped, %d disabled); %d of %d leaf checks pass\n",
		passed, ju.Tests, ju.Failures, ju.Errors, ju.Skipped, ju.Disabled, len(passing), len(checks))

	if os.Getenv("CLANK_CONFORMANCE_UPDATE") == "1" {
		if err := writeBaseline(baselineFile, passing, passed, ju.Tests); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: %d passing checks", baselineFile, len(passing))
		return
	}
	baseline, err := readBaseline(baselineFile)
	if err != nil {
		t.Fatal(err)
	}
	var lost, gained []string
	for _, name := range baseline {
		if !passing[name] {
			lost = append(lost, fmt.Sprintf("%s (now %s)", name, orMissing(checks[name])))
		}
	}
	inBaseline := map[string]bool{}
	for _, name := range baseline {
		inBaseline[name] = true
	}
	for name := range passing {
		if !inBaseline[name] {
			gained = append(gained, name)
		}
	}
	sort.Strings(gained)
	fmt.Printf("OCI conformance baseline: %d checks, %d no longer pass, %d pass beyond it\n", len(baseline), len(lost), len(gained))
	if len(gained) > 0 {
		t.Logf("checks passing beyond the baseline (UPDATE=1 run.sh records them):\n  %s", strings.Join(gained, "\n  "))
	}
	if len(lost) > 0 {
		t.Errorf("%d checks of the baseline no longer pass:\n  %s", len(lost), strings.Join(lost, "\n  "))
	}
}

func orMissing(status string) string {
	if status == "" {
		return "not run"
	}
	return status
}

func readBaseline(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the baseline: %w", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		names = append(names, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read the baseline: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("the baseline %s lists no checks", path)
	}
	return names, nil
}

func writeBaseline(path string, passing map[string]bool, passed, total int) error {
	names := make([]string, 0, len(passing))
	for name := range passing {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "# OCI distribution-spec conformance checks that pass against the embedded Clank registry.\n")
	fmt.Fprintf(&b, "# Suite %s\n", Suite)
	fmt.Fprintf(&b, "# Recorded %s: %d of %d checks pass; %d leaf checks below. Regenerate: UPDATE=1 registry/conformance/run.sh\n",
		time.Now().UTC().Format("2006-01-02"), passed, total, len(names))
	for _, n := range names {
		b.WriteString(n)
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
