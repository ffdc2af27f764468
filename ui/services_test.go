package ui_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// ageOf is the age a deployments row shows ("12s"), "" if none.
var ageRe = regexp.MustCompile(`\s([0-9]+[smhdwy])\s`)

func ageOf(line string) string {
	if m := ageRe.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	return ""
}

// The services list on a real daemon says what runs: the ACTIVE
// deployment's number and image, its runtime as it changes (a health check
// that starts failing after the cutover), the image the next deploy would
// run, and the requests the router answered, as a sparkline; beside it the
// ages tick on the real clock, with no key pressed.
func TestServicesSayWhatRuns(t *testing.T) {
	t.Parallel()
	w := realdaemon.Start(t)
	opts := options(t, ui.RoleAdmin)
	opts.Now = nil // the real clock
	s := openWith(t, w.Backend(), opts, 200, 50)
	s.waitFor(realdaemon.Service, "ACTIVE", "docker up")
	tag := w.NewImage[strings.LastIndexByte(w.NewImage, ':')+1:]
	s.waitFor("web deployments", "RUNNING", tag)
	if line := leftLine(s.plain(), "▌ web "); !strings.Contains(line, "● ACTIVE") || !strings.Contains(line, "#2") {
		t.Fatalf("web's row does not say ACTIVE #2: %q", line)
	}
	// Nothing differs from what runs: no "next deploy".
	s.never("NEXT DEPLOY")

	// Ages tick with no key pressed and no event.
	s.waitRow(2, "ACTIVE")
	first := ageOf(paneLine(s.plain(), "#2 ", "ACTIVE"))
	if first == "" {
		t.Fatalf("no age on #2's row:\n%s", s.plain())
	}
	s.waitUntil(func(frame string) string {
		if got := ageOf(paneLine(frame, "#2 ", "ACTIVE")); got == first || got == "" {
			return "kept #2's age at " + first
		}
		return ""
	})
	// With the services focused, r's target is named and marked: #1.
	s.waitFor("r rollback to #1", "r▸#1")

	// The router's answers show as a sparkline with the rate of the last
	// step (the engine adds a step every 10 s).
	for range 30 {
		w.Get(realdaemon.Service, "/")
	}
	s.waitUntil(func(frame string) string {
		line := leftLine(frame, "▌ web ")
		if !strings.ContainsAny(line, "▂▃▄▅▆▇█") {
			return "shows no answers in web's sparkline: " + line
		}
		return ""
	})

	// The app's health check fails after the cutover: unhealthy, with the
	// reason in the detail of the ACTIVE deployment.
	w.Post(realdaemon.Service, "/health?fail=1")
	s.waitFor("◍ ACTIVE · unhealthy")
	s.press("tab", "enter")
	s.waitFor("web #2", "runtime", "unhealthy: ")
	s.waitFor("HTTP 500")
	w.Post(realdaemon.Service, "/health?fail=0")
	// Healthy again: the row and the detail's runtime say so (the
	// lifecycle keeps the event that said unhealthy).
	s.waitUntil(func(frame string) string {
		row, rt := leftLine(frame, "▌ web "), paneLine(frame, " runtime ")
		if strings.Contains(row, "unhealthy") || !strings.Contains(rt, "healthy") || strings.Contains(rt, "unhealthy") {
			return "still shows web unhealthy: " + row + " / " + rt
		}
		return ""
	})
	s.press("esc", "tab")

	// The service's image changes: the next deploy's is shown beside the
	// running one.
	w.Update(realdaemon.Service, api.ServiceSpec{Image: &w.OldImage})
	s.waitFor("NEXT DEPLOY")
	oldTag := w.OldImage[strings.LastIndexByte(w.OldImage, ':')+1:]
	if line := leftLine(s.plain(), "▌ web "); !strings.Contains(line, tag) || !strings.Contains(line, oldTag) {
		t.Fatalf("web's row does not show %s running and %s next: %q", tag, oldTag, line)
	}
}

// The first deploy of a service: the modal lists what it creates (not
// "none: same image"), then follows it to ACTIVE showing the health
// check's results as they come; the detail says afterwards what the modal
// said.
func TestFirstDeployListsWhatItCreates(t *testing.T) {
	t.Parallel()
	w := realdaemon.New(t)
	image := w.Image("v1")
	w.CreateService("fresh", image, func(s *api.ServiceSpec) { s.Env = map[string]string{"API_KEY": "s3cr3t-one"} })
	for _, size := range sizes {
		t.Run(size.name, func(t *testing.T) {
			s := openWith(t, w.Backend(), options(t, ui.RoleAdmin), size.w, size.h)
			s.waitFor("fresh", "docker up")
			s.press("d")
			s.waitForModal("Creates (fresh has never been deployed):")
			s.waitForModal("image + " + image)
			s.waitForModal("env + API_KEY = ••••")
			s.waitForModal("port + 8080")
			s.waitForModal("domains + fresh.localhost")
			s.never("s3cr3t-one")
			if strings.Contains(s.modal(), "none: same image") {
				t.Fatalf("the first deploy's modal says nothing changes:\n%s", s.plain())
			}
			s.golden()
			s.press("esc")
			s.waitGone("Creates (")
		})
	}

	s := openWith(t, w.Backend(), options(t, ui.RoleAdmin), 80, 24)
	s.waitFor("fresh", "docker up")
	s.press("d")
	s.waitForModal("Creates (fresh has never been deployed):")
	s.press("y")
	s.waitForModal("✓ #1 is ACTIVE")
	s.waitForModal("GET /healthz passed (attempt")
	var shown []string
	for _, line := range strings.Split(s.plain(), "\n") {
		// The health check's results (not the step that starts probing).
		if i := strings.Index(line, "GET /healthz"); i >= 0 && !strings.Contains(line, "probing") {
			shown = append(shown, strings.TrimRight(strings.TrimRight(line[i:], " "), "│ "))
		}
	}
	s.press("enter") // Close
	s.waitGone("is ACTIVE")
	s.press("enter", "enter") // fresh's deployments, #1's detail
	s.waitFor("fresh #1")
	s.waitGone("loading…")
	s.press("G") // the lifecycle, at the bottom
	s.waitFor("activated")
	for _, line := range shown {
		s.waitFor(strings.TrimSuffix(line, "…"))
	}
}
