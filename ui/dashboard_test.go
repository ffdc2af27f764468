package ui_test

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// sizes are the terminals every screen is checked at: the smallest one it
// must fit, and a wide one whose room it must use.
var sizes = []struct {
	name string
	w, h int
}{{"80x24", 80, 24}, {"200x50", 200, 50}}

// openWeb selects web (the services are listed by name: api comes first)
// and focuses its deployments.
func openWeb(s *screen) {
	s.press("j", "enter")
	s.waitFor("▸ web deployments", "rollback of #1")
}

// The dashboard on a real daemon's history (realdaemon.History): what every
// screen shows is what the daemon says, and looking changes nothing. The
// subtests only look (or cancel, or are refused); each ends on an answer of
// the daemon that came after its last key, so that when they are done,
// anything a stray action had created would be there to see.
func TestDashboardOnARealHistory(t *testing.T) {
	t.Parallel()
	w := realdaemon.History(t)
	before := w.Snapshot()
	var acts int64
	backend := func(t *testing.T) *realdaemon.Counting {
		b := w.Backend()
		t.Cleanup(func() { acts += b.Acts.Load() })
		return b
	}

	t.Run("services", func(t *testing.T) {
		for _, size := range sizes {
			t.Run(size.name, func(t *testing.T) {
				s := open(t, backend(t), ui.RoleAdmin, size.w, size.h)
				s.waitFor("api", "web", "worker", "NONE", "testhost", "docker up")
				// api's deployments are read: the footer names r's target.
				s.waitFor("r rollback to #1")
				if size.w >= 120 {
					// Side by side: the selected service's deployments are there too.
					s.waitFor("api deployments", "Rollback capable")
				}
				s.golden()
			})
		}
	})

	t.Run("deployments show kind, age, author and badges", func(t *testing.T) {
		for _, size := range sizes {
			t.Run(size.name, func(t *testing.T) {
				s := open(t, backend(t), ui.RoleAdmin, size.w, size.h)
				openWeb(s)
				s.waitFor("#5", "#1", "rollback of #1", "FAILED", "3h", "setup")
				badge := "Rollback capable"
				if size.w < 100 {
					// No room for the badge whole: a glyph, and its legend.
					badge = "↺"
					s.waitFor("↺ rollback capable · ∅ image gone")
				} else {
					s.waitFor("Rollback capable", "image gone")
				}
				// The badges are the daemon's: only #2 can be rolled back to;
				// #5 is ACTIVE, #3 never was, the image of #1 and #4 is gone.
				for n, capable := range map[int]bool{5: false, 4: false, 3: false, 2: true, 1: false} {
					line := paneLine(s.plain(), "#"+strconv.Itoa(n)+" ")
					if got := strings.Contains(line, badge); got != capable || got != w.Web[n].RollbackCapable {
						t.Errorf("#%d: badge %v on screen, daemon says %v, want %v: %q", n, got, w.Web[n].RollbackCapable, capable, line)
					}
				}
				s.golden()
			})
		}
	})

	t.Run("rollback modal shows the daemon's diff", func(t *testing.T) {
		for _, size := range sizes {
			t.Run(size.name, func(t *testing.T) {
				b := backend(t)
				s := open(t, b, ui.RoleAdmin, size.w, size.h)
				openWeb(s)
				s.press("j", "j", "j", "r")
				s.waitFor("Roll back web to #2", "Changes against ACTIVE #5", "Cancel")
				plan := w.Plan(api.ActionRequest{Kind: "rollback", Service: "web", Deployment: w.Web[2].ID})
				if plan.Refusal != "" || len(plan.Changes) < 8 {
					t.Fatalf("the daemon's plan: refusal %q, %d changes; want the history's 8 or more", plan.Refusal, len(plan.Changes))
				}
				frame := s.plain()
				for _, ch := range plan.Changes {
					if ch.Field == "env" {
						continue
					}
					if lineWith(frame, ch.From) == "" || lineWith(frame, "→ "+ch.To) == "" {
						t.Errorf("the modal does not show the daemon's change %s: %q → %q:\n%s", ch.Field, ch.From, ch.To, frame)
					}
				}
				s.waitFor("~ API_KEY •••• → ••••", "- FEATURE_X", "- PORT", "GET /healthz every 200ms, timeout 1s", "8081 → 8080")
				for _, secret := range realdaemon.Secrets {
					s.never(secret)
				}
				if p, a := b.Plans.Load(), b.Acts.Load(); p != 1 || a != 0 {
					t.Fatalf("opening the modal asked %d plans and %d acts, want 1 and 0", p, a)
				}
				s.golden()
				s.press("esc")
				s.waitGone("Changes against")
			})
		}
	})

	t.Run("refused rollback says the daemon's reason", func(t *testing.T) {
		web := func(keys ...string) func(*screen) {
			return func(s *screen) { openWeb(s); s.press(keys...) }
		}
		for _, c := range []struct {
			name   string
			keys   func(*screen) // from the services list to r
			req    api.ActionRequest
			reason string // part of the daemon's refusal
			golden bool
		}{
			{"image gone", web("G", "r"), api.ActionRequest{Kind: "rollback", Service: "web", Deployment: w.Web[1].ID},
				"was removed from the local Docker engine", true},
			{"never active", web("j", "j", "r"), api.ActionRequest{Kind: "rollback", Service: "web", Deployment: w.Web[3].ID},
				"was never ACTIVE (FAILED: health check GET /healthz did not pass within 2s", false},
			{"current active", web("r"), api.ActionRequest{Kind: "rollback", Service: "web", Deployment: w.Web[5].ID},
				"is the current ACTIVE deployment", false},
			{"domain taken", func(s *screen) {
				s.press("enter")
				s.waitDeployments("api")
				s.press("j", "r")
			}, api.ActionRequest{Kind: "rollback", Service: "api", Deployment: w.API[1].ID},
				"domain shop.localhost is taken by service worker", false},
			{"nothing earlier", func(s *screen) { s.press("j", "j", "r") }, api.ActionRequest{Kind: "rollback", Service: "worker"},
				"has no earlier deployment that was ACTIVE", false},
		} {
			t.Run(c.name, func(t *testing.T) {
				refusal := w.Plan(c.req).Refusal
				if !strings.Contains(refusal, c.reason) {
					t.Fatalf("the daemon refuses with %q, want it to say %q", refusal, c.reason)
				}
				b := backend(t)
				s := open(t, b, ui.RoleAdmin, 80, 24)
				c.keys(s)
				s.waitForModal("✗ Refused: " + refusal)
				s.waitForModal("Nothing was created.")
				if c.golden {
					s.golden()
				}
				// y has nothing to confirm: once handled, the modal still
				// says why, and nothing started.
				s.press("y")
				if frame := s.handled(); !strings.Contains(frame, "Refused") || strings.Contains(frame, "starting") {
					t.Fatalf("after y on a refusal the modal shows:\n%s", frame)
				}
				s.press("enter")
				s.waitGone("Refused")
				if a := b.Acts.Load(); a != 0 {
					t.Fatalf("a refused rollback acted %d times", a)
				}
			})
		}
	})

	t.Run("each view and role shows its own keys", func(t *testing.T) {
		admin := open(t, backend(t), ui.RoleAdmin, 200, 50)
		admin.waitFor("api deployments")
		admin.press("j") // web: r rolls back to #4, the deployment ACTIVE before #5
		admin.waitFor("r rollback to #4", "r▸#4", "R redeploy", "d deploy", "q quit")
		admin.press("tab") // web's deployments, #5 (ACTIVE) selected: r not offered
		admin.waitFor("▸ web deployments", "enter open")
		admin.never("r rollback to")
		admin.press("j", "j", "j") // #2, rollback capable
		admin.waitFor("r rollback to #2")
		admin.press("enter") // its detail: / does nothing here, and says so
		admin.waitFor("web #2", "esc deployments")
		admin.press("/")
		admin.waitFor("/ filters the lists")
		admin.press("esc", "/", "z", "z", "z", "enter") // a filter that matches no deployment
		admin.waitFor(`no deployment matches "zzz"`)
		admin.never("enter open")
		admin.press("r")
		admin.waitFor("no deployment selected: the filter matches none")
		admin.never("Roll back")

		viewer := open(t, backend(t), ui.RoleViewer, 80, 24)
		viewer.waitFor("enter open", "q quit")
		for _, k := range []string{"r rollback", "R redeploy", "d deploy"} {
			viewer.never(k)
		}
	})

	t.Run("viewer is read-only", func(t *testing.T) {
		for _, size := range sizes {
			t.Run(size.name, func(t *testing.T) {
				b := backend(t)
				s := open(t, b, ui.RoleViewer, size.w, size.h)
				s.waitFor("viewer")
				openWeb(s)
				s.press("j")
				for _, k := range []string{"R", "d", "r"} {
					s.press(k)
					s.waitFor("read-only: viewer role")
					s.press("y")
					if k != "r" {
						s.press("esc")
						s.waitGone("read-only")
					}
				}
				s.golden()
				// The answer to a later request: the detail of #4, read from
				// the daemon after every key above was handled.
				s.press("enter", "enter")
				s.waitFor("web #4", "Lifecycle", "HEALTH_CHECKING")
				if p, a := b.Plans.Load(), b.Acts.Load(); p+a != 0 {
					t.Fatalf("a viewer reached the daemon: %d plans, %d acts", p, a)
				}
			})
		}
	})

	t.Run("detail masks env and shows the lifecycle", func(t *testing.T) {
		s := open(t, backend(t), ui.RoleAdmin, 80, 24)
		openWeb(s)
		s.press("j", "enter")
		s.waitFor("web #4", "API_KEY=••••", "Lifecycle", "HEALTH_CHECKING")
		s.waitGone("loading…")
		for _, secret := range realdaemon.Secrets {
			s.never(secret)
		}
		s.golden()
		s.press("G")
		s.waitFor("drained; container removed")
		// The health check's results were recorded as they came.
		s.waitFor("GET /healthz passed (attempt")
	})

	t.Run("logs are the container's", func(t *testing.T) {
		s := open(t, backend(t), ui.RoleAdmin, 80, 24)
		openWeb(s)
		s.press("l")
		// Its health probes (GET /) add lines: the first one, the app's
		// start, is at the top once any line has come.
		s.waitFor("logs · web #5", "following · ")
		s.press("g")
		s.waitFor("sampleapp v3 listening on")
		s.press("esc")
		s.waitFor("web deployments")
	})

	t.Run("filter and help", func(t *testing.T) {
		s := open(t, backend(t), ui.RoleAdmin, 80, 24)
		s.press("/", "w", "o")
		s.waitFor(`filter "wo"`, "worker")
		s.never("api ")
		s.press("esc")
		s.waitFor("api", "worker")
		s.press("?")
		s.waitFor("Keys", "rollback", "switch pane")
		s.press("esc")
		s.waitGone("switch pane    ")
	})

	t.Run("side by side the deployments follow the selection", func(t *testing.T) {
		s := open(t, backend(t), ui.RoleAdmin, 160, 48)
		s.waitFor("api deployments")
		s.press("j")
		s.waitFor("web deployments", "rollback of #1")
		s.press("/", "w", "o")
		s.waitFor("worker deployments", "no deployments yet")
	})

	t.Run("colour reaches the terminal", func(t *testing.T) {
		s := open(t, backend(t), ui.RoleAdmin, 80, 24)
		openWeb(s)
		_ = s.tm.Quit()
		out := s.tm.FinalOutput(t, teatest.WithFinalTimeout(10*time.Second))
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(out); err != nil {
			t.Fatal(err)
		}
		// ANSI256 profile: the palette arrives as 256-colour SGR sequences.
		if !bytes.Contains(buf.Bytes(), []byte("38;5;")) {
			t.Fatalf("no 256-colour sequence in the program's output: %q", buf.String())
		}
	})

	k9sHabits(t, w, backend)

	if acts != 0 {
		t.Fatalf("looking acted %d times", acts)
	}
	w.CreatedNothing(before)
}
