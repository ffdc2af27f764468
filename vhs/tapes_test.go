// Package vhs_test checks the tapes that drive `clank demo` for the README's
// recordings: they parse (vhs validate, when vhs is installed) and they keep
// the habits that make recordings repeatable.
package vhs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func tapes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.tape")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"demo.tape", "rollback.tape"} {
		if _, err := os.Stat(want); err != nil {
			t.Fatalf("missing tape: %v", err)
		}
	}
	return files
}

// vhs finds the vhs binary: $VHS, else PATH. Without it the parse check is
// skipped, unless CLANK_REQUIRE_VHS=1 (CI).
func vhs(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("VHS"); p != "" {
		return p
	}
	p, err := exec.LookPath("vhs")
	if err != nil {
		if os.Getenv("CLANK_REQUIRE_VHS") == "1" {
			t.Fatal("vhs not found: go install github.com/charmbracelet/vhs@v0.10.0")
		}
		t.Skip("vhs not installed (go install github.com/charmbracelet/vhs@v0.10.0)")
	}
	return p
}

func TestTapesValidate(t *testing.T) {
	bin := vhs(t)
	for _, tape := range tapes(t) {
		out, err := exec.Command(bin, "validate", tape).CombinedOutput()
		if err != nil {
			t.Errorf("vhs validate %s: %v\n%s", tape, err, out)
		}
	}
	themes, err := exec.Command(bin, "themes").CombinedOutput()
	if err != nil {
		t.Fatalf("vhs themes: %v", err)
	}
	known := map[string]bool{}
	for _, line := range strings.Split(string(themes), "\n") {
		known[strings.TrimSpace(line)] = true
	}
	theme := regexp.MustCompile(`(?m)^Set Theme "([^"]+)"`)
	for _, tape := range tapes(t) {
		for _, m := range theme.FindAllStringSubmatch(read(t, tape), -1) {
			if !known[m[1]] {
				t.Errorf("%s: unknown theme %q", tape, m[1])
			}
		}
	}
}

// Recordings are repeatable when the setup is hidden, the program is the
// real binary through `clank demo`, and every step waits for what is on
// screen rather than for time alone.
func TestTapesAreDeterministic(t *testing.T) {
	for _, tape := range tapes(t) {
		s := read(t, tape)
		for _, want := range []string{"Require clank", "Hide", "Show", `Type "clank demo"`, "Wait+Screen /Services/", "Output vhs/"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s lacks %q", tape, want)
			}
		}
		if !strings.Contains(s, "CLANK_DATA_DIR=$(mktemp -d)") {
			t.Errorf("%s does not start from a fresh data dir", tape)
		}
		// Every key that asks the daemon for something waits for the answer
		// on screen.
		lines := strings.Split(s, "\n")
		for i, l := range lines {
			switch l {
			case `Type "clank demo"`, `Type "r"`, `Type "y"`, `Type "l"`, `Type "?"`:
				if !waitsSoon(lines[i+1:]) {
					t.Errorf("%s:%d: %s is not followed by a Wait+Screen", tape, i+1, l)
				}
			}
		}
	}
}

// waitsSoon reports whether a Wait+Screen comes before the next key (the
// Enter that runs a typed command aside).
func waitsSoon(rest []string) bool {
	for _, l := range rest {
		switch {
		case strings.HasPrefix(l, "Wait+Screen"):
			return true
		case strings.HasPrefix(l, "Sleep"), strings.HasPrefix(l, "#"), strings.TrimSpace(l) == "", l == "Enter":
			continue
		default:
			return false
		}
	}
	return false
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
