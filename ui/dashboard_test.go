package ui_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
)

// sizes are the terminals every screen is checked at: the smallest one it
// must fit, and a wide one whose room it must use.
var sizes = []struct {
	name string
	w, h int
}{{"80x24", 80, 24}, {"160x48", 160, 48}}

// openDeployments focuses web's deployments (enter on the services list).
func openDeployments(s *screen) {
	s.press("enter")
	s.waitFor("▸ web deployments", "rollback of #2")
}

func TestServicesList(t *testing.T) {
	for _, size := range sizes {
		t.Run(size.name, func(t *testing.T) {
			s := open(t, demoBackend(), ui.RoleAdmin, size.w, size.h)
			s.waitFor("web", "api", "worker", "ACTIVE", "NONE", "demo-host", "docker ok")
			if size.w >= 120 {
				// Side by side: the selected service's deployments are there too.
				s.waitFor("web deployments", "Rollback capable")
			}
			s.golden()
		})
	}
}

func TestDeploymentsShowKindAgeAuthorAndBadges(t *testing.T) {
	for _, size := range sizes {
		t.Run(size.name, func(t *testing.T) {
			s := open(t, demoBackend(), ui.RoleAdmin, size.w, size.h)
			openDeployments(s)
			s.waitFor("#5", "#1", "rollback of #2", "Rollback capable", "image gone", "FAILED", "10h")
			if size.w >= 120 {
				s.waitFor("carol", "bob (SHA256:q1w2e3)")
			}
			s.golden()
		})
	}
}

func TestColourReachesTheTerminal(t *testing.T) {
	s := open(t, demoBackend(), ui.RoleAdmin, 80, 24)
	openDeployments(s)
	_ = s.tm.Quit()
	out := s.tm.FinalOutput(t, teatest.WithFinalTimeout(5*time.Second))
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(out); err != nil {
		t.Fatal(err)
	}
	// ANSI256 profile: the palette arrives as 256-colour SGR sequences.
	if !bytes.Contains(buf.Bytes(), []byte("38;5;")) {
		t.Fatalf("no 256-colour sequence in the program's output: %q", buf.String())
	}
}

func TestRollbackModalShowsTheDiff(t *testing.T) {
	for _, size := range sizes {
		t.Run(size.name, func(t *testing.T) {
			b := demoBackend()
			s := open(t, b, ui.RoleAdmin, size.w, size.h)
			openDeployments(s)
			s.press("j", "r")
			s.waitFor("Roll back web to #4", "Changes against ACTIVE #5", "nginx:1.26 → nginx:1.24",
				"- FEATURE_X", "8081 → 8080", "Cancel")
			s.never("s3cr3t")
			plans := b.Plans()
			if len(plans) != 1 || !plans[0].DryRun || plans[0].Kind != "rollback" || plans[0].Deployment != "web-4" {
				t.Fatalf("plans = %+v, want one dry-run rollback to web-4", plans)
			}
			if acts := b.Acts(); len(acts) != 0 {
				t.Fatalf("opening the modal acted: %+v", acts)
			}
			s.golden()
		})
	}
}

func TestRefusedRollbackSaysWhy(t *testing.T) {
	for _, size := range sizes {
		t.Run(size.name, func(t *testing.T) {
			b := demoBackend()
			s := open(t, b, ui.RoleAdmin, size.w, size.h)
			openDeployments(s)
			s.press("G", "r")
			s.waitFor("Roll back web to #1", "Refused", "image nginx:1.23 is gone", "Nothing was created")
			s.press("y") // nothing to confirm
			s.press("enter")
			s.waitFor("web deployments")
			if acts := b.Acts(); len(acts) != 0 {
				t.Fatalf("a refused rollback acted: %+v", acts)
			}
		})
	}
	t.Run("never-active-80x24", func(t *testing.T) {
		s := open(t, demoBackend(), ui.RoleAdmin, 80, 24)
		openDeployments(s)
		s.press("j", "j", "r")
		s.waitFor("Roll back web to #3", "#3 was never ACTIVE")
		s.golden()
	})
}

func TestViewerIsReadOnly(t *testing.T) {
	for _, size := range sizes {
		t.Run(size.name, func(t *testing.T) {
			b := demoBackend()
			s := open(t, b, ui.RoleViewer, size.w, size.h)
			s.waitFor("viewer")
			openDeployments(s)
			for _, k := range []string{"R", "d", "r"} {
				s.press(k)
				s.waitFor("read-only: viewer role")
				s.press("y")
				if k != "r" {
					s.press("esc")
				}
			}
			s.golden()
			if plans, acts := b.Plans(), b.Acts(); len(plans)+len(acts) != 0 {
				t.Fatalf("a viewer reached the backend: plans %+v acts %+v", plans, acts)
			}
		})
	}
}

func TestConfirmRollsBackAndFollowsToActive(t *testing.T) {
	b := demoBackend()
	s := open(t, b, ui.RoleAdmin, 80, 24)
	openDeployments(s)
	s.press("j", "r")
	s.waitFor("Changes against ACTIVE #5")
	s.press("y")
	s.waitFor("#6 rollback of #4", "DEPLOYING")
	acts := b.Acts()
	want := api.ActionRequest{Kind: "rollback", Service: "web", Deployment: "web-4", TriggeredBy: "tester"}
	if len(acts) != 1 || acts[0] != want {
		t.Fatalf("acts = %+v, want %+v", acts, want)
	}
	b.SetStatus("web", 6, "HEALTH_CHECKING", "probing /healthz")
	s.waitFor("probing /healthz")
	b.SetStatus("web", 6, "ACTIVE", "serving web.localhost")
	s.waitFor("#6 is ACTIVE", "#5      ○ INACTIVE")
	s.golden()
	s.press("enter")
	waitGone(s, "#6 is ACTIVE")
}

func TestFailedRollbackShowsTheReason(t *testing.T) {
	b := demoBackend()
	s := open(t, b, ui.RoleAdmin, 80, 24)
	openDeployments(s)
	s.press("j", "r")
	s.waitFor("Changes against ACTIVE #5")
	s.press("y")
	s.waitFor("DEPLOYING")
	b.SetStatus("web", 6, "FAILED", "health check /healthz: connection refused")
	s.waitFor("#6 FAILED: health check /healthz: connection refused")
}

func TestCancelCreatesNothing(t *testing.T) {
	for _, keys := range [][]string{{"esc"}, {"n"}, {"enter"}, {"tab", "tab", "enter"}} {
		t.Run(strings.Join(keys, "+"), func(t *testing.T) {
			b := demoBackend()
			s := open(t, b, ui.RoleAdmin, 80, 24)
			openDeployments(s)
			s.press("j", "r")
			s.waitFor("Changes against ACTIVE #5")
			s.press(keys...)
			waitGone(s, "Changes against")
			if acts := b.Acts(); len(acts) != 0 {
				t.Fatalf("cancelling acted: %+v", acts)
			}
		})
	}
	t.Run("tab+enter confirms", func(t *testing.T) {
		b := demoBackend()
		s := open(t, b, ui.RoleAdmin, 80, 24)
		openDeployments(s)
		s.press("j", "r")
		s.waitFor("Changes against ACTIVE #5")
		s.press("tab", "enter")
		s.waitFor("#6 rollback of #4")
		if acts := b.Acts(); len(acts) != 1 {
			t.Fatalf("acts = %+v, want one", acts)
		}
	})
}

func waitGone(s *screen, text string) {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Contains(s.plain(), text) {
		if time.Now().After(deadline) {
			s.t.Fatalf("screen still shows %q:\n%s", text, s.plain())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRedeployAndDeployUseTheModal(t *testing.T) {
	b := demoBackend()
	s := open(t, b, ui.RoleAdmin, 80, 24)
	openDeployments(s)
	s.press("j", "R")
	s.waitFor("Redeploy web #4 with the current config", "Changes against ACTIVE #5")
	s.press("y")
	s.waitFor("#6 redeploy of #4")
	s.press("esc", "d")
	s.waitFor("Deploy web (its current image and config)")
	s.press("esc")
	acts := b.Acts()
	if len(acts) != 1 || acts[0].Kind != "redeploy" || acts[0].Deployment != "web-4" {
		t.Fatalf("acts = %+v, want one redeploy of web-4", acts)
	}
}

func TestLiveStatusChangesWithoutAKeyOrAReread(t *testing.T) {
	b := demoBackend()
	s := open(t, b, ui.RoleAdmin, 160, 48)
	openDeployments(s)
	reads := b.DeploymentsCalls.Load()

	// Someone else rolls back (the CLI, another SSH session).
	if _, err := b.Act(t.Context(), api.ActionRequest{Kind: "rollback", Service: "web", Deployment: "web-2",
		TriggeredBy: "dave"}); err != nil {
		t.Fatal(err)
	}
	s.waitFor("#6", "DEPLOYING", "rollback of #2", "dave")
	b.SetStatus("web", 6, "HEALTH_CHECKING", "probing")
	s.waitFor("HEALTH_CHECKING")
	b.SetStatus("web", 6, "ACTIVE", "serving")
	s.waitFor("#6      ● ACTIVE")
	s.waitFor("#5      ○ INACTIVE")
	if got := b.DeploymentsCalls.Load(); got != reads {
		t.Fatalf("live updates re-read deployments %d times", got-reads)
	}
}

func TestDetailMasksEnvAndShowsLifecycle(t *testing.T) {
	b := demoBackend()
	s := open(t, b, ui.RoleAdmin, 80, 24)
	openDeployments(s)
	s.press("j", "enter")
	s.waitFor("web #4", "API_KEY=••••", "DB_URL=••••", "Lifecycle", "probing /healthz")
	s.never("s3cr3t")
	s.never("postgres://")
	s.golden()
	s.press("G")
	s.waitFor("replaced by #5")
}

func TestLogsFollowTheDeployment(t *testing.T) {
	s := open(t, demoBackend(), ui.RoleAdmin, 80, 24)
	openDeployments(s)
	s.press("l")
	s.waitFor("logs · web #5", "following", "GET /healthz 200")
	s.press("esc")
	s.waitFor("web deployments")
}

func TestFilterAndHelp(t *testing.T) {
	s := open(t, demoBackend(), ui.RoleAdmin, 80, 24)
	s.press("/", "w", "o")
	s.waitFor(`filter "wo"`, "worker")
	s.never("nginx:1.26")
	s.press("esc")
	s.waitFor("nginx:1.26", "worker")
	s.press("?")
	s.waitFor("Keys", "rollback", "switch pane")
	s.press("esc")
	waitGone(s, "switch pane    ")
}

func TestRollbackFromTheServicesListTargetsThePreviousDeployment(t *testing.T) {
	b := demoBackend()
	s := open(t, b, ui.RoleAdmin, 80, 24)
	s.press("r")
	s.waitFor("Roll back web to #4", "Changes against ACTIVE #5")
	s.press("y")
	s.waitFor("#6 rollback of #4")
	acts := b.Acts()
	if len(acts) != 1 || acts[0].Deployment != "web-4" {
		t.Fatalf("acts = %+v, want the planned target web-4 named", acts)
	}
}

func TestSideBySideTheDeploymentsFollowTheSelection(t *testing.T) {
	s := open(t, demoBackend(), ui.RoleAdmin, 160, 48)
	s.waitFor("web deployments")
	s.press("j")
	s.waitFor("api deployments", "ghcr.io/acme/api:2.0")
	s.press("/", "w", "o")
	s.waitFor("worker deployments", "no deployments yet")
}
