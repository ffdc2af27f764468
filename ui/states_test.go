package ui

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui/internal/fakebackend"
)

// statesNow is the clock of the states' screens.
var statesNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// statesServices are services in every state the list draws: healthy,
// unhealthy, crashed, restarting, frozen with a next deploy, deploying, and
// never deployed.
func statesServices() []api.Service {
	svc := func(name, image, running string, n int, runtime string) api.Service {
		s := api.Service{Name: name, Image: image, Port: 8080, Domains: []string{name + ".localhost"}, Status: "NONE"}
		if n > 0 {
			s.Status, s.ActiveNumber, s.ActiveImage = "ACTIVE", n, running
			s.ActiveDeploymentID = ptr(name + "-" + strings.Repeat("0", 1))
			if runtime != "" {
				s.Runtime = ptr(runtime)
			}
		}
		return s
	}
	web := svc("web", "registry.local/web:v3", "registry.local/web:v2", 7, "healthy")
	web.Frozen, web.FrozenBy = true, "alice (cli)"
	api1 := svc("api", "ghcr.io/acme/api:2026.11.28", "ghcr.io/acme/api:2026.11.28", 12, "unhealthy")
	api1.RuntimeReason = "HTTP 500"
	jobs := svc("jobs", "ghcr.io/acme/jobs:v9", "ghcr.io/acme/jobs:v9", 3, "crashed")
	jobs.LastExit = ptr("exit 137 (OOM killed)")
	cache := svc("cache", "redis-proxy:v1", "redis-proxy:v1", 1, "restarting")
	docs := svc("docs", "registry.local/docs:v5", "registry.local/docs:v4", 4, "healthy")
	docs.Status = "DEPLOYING"
	fresh := svc("a-service-with-a-long-name", "registry.local/fresh:v1", "", 0, "")
	return []api.Service{web, api1, jobs, cache, docs, fresh}
}

// statesDeployments are web's deployments: ACTIVE, a warm standby with 4m
// left, an old one rollback capable, one whose image is gone, a failure.
func statesDeployments() []api.Deployment {
	at := func(ago time.Duration) time.Time { return statesNow.Add(-ago) }
	d := func(n int, status, image string, ago time.Duration) api.Deployment {
		return api.Deployment{ID: "web-" + string(rune('0'+n)), Number: n, Service: "web", Kind: "deploy", Status: status,
			Image: image, CreatedAt: at(ago), TriggeredBy: "alice (SHA256:Zm9vYmFyYmF6cXV4)", ImageAvailability: "available"}
	}
	active := d(7, "ACTIVE", "registry.local/web:v2", 90*time.Second)
	active.Kind, active.SourceNumber, active.Runtime = "rollback", 5, ptr("healthy")
	warm := d(6, "INACTIVE", "registry.local/web:v3", 10*time.Minute)
	warm.WarmUntil, warm.RollbackCapable, warm.ActivatedAt = ptr(statesNow.Add(4*time.Minute+30*time.Second)), true, ptr(at(9*time.Minute))
	old := d(5, "INACTIVE", "registry.local/web:v2", 3*time.Hour)
	old.RollbackCapable, old.ActivatedAt = true, ptr(at(3*time.Hour))
	gone := d(4, "INACTIVE", "registry.local/web:v1", 26*time.Hour)
	gone.ImageAvailability, gone.ActivatedAt = "missing", ptr(at(26*time.Hour))
	failed := d(3, "FAILED", "registry.local/web:v1", 30*time.Hour)
	failed.FailureReason = "health check GET /healthz did not pass within 60s: HTTP 500"
	return []api.Deployment{active, warm, old, gone, failed}
}

// statesModel is a dashboard on the states, its deployments table open on
// web, with traffic (a step with 5xx) and Docker down in the header.
func statesModel(t *testing.T, w, h int) *Model {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := New(fakebackend.New(), Options{Context: ctx, Role: RoleAdmin, Actor: "alice (SHA256:Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg)",
		Host: "testhost", Width: w, Height: h, Now: func() time.Time { return statesNow }, ColorProfile: colorprofile.ANSI256})
	m.Update(statusMsg{status: api.Status{Host: "testhost", Docker: "ok", DockerUp: true, Registry: "127.0.0.1:5000",
		Router: "127.0.0.1:8080", SSH: "127.0.0.1:2222"}})
	m.Update(servicesMsg{services: statesServices()})
	step := func(ago time.Duration, ok, bad uint64) api.TrafficPoint {
		return api.TrafficPoint{At: statesNow.Add(-ago), C2xx: ok, C5xx: bad}
	}
	m.Update(trafficMsg{traffic: []api.Traffic{
		{Service: "web", Step: 10, Points: []api.TrafficPoint{step(65*time.Second, 20, 0), step(55*time.Second, 80, 0),
			step(45*time.Second, 120, 0), step(35*time.Second, 100, 40), step(25*time.Second, 60, 0), step(5*time.Second, 90, 0)}},
		{Service: "api", Step: 10, Points: []api.TrafficPoint{step(15*time.Second, 3, 0), step(5*time.Second, 2, 2)}},
	}})
	m.deps.service = "web"
	m.deps.gen++
	m.Update(pageMsg{gen: m.deps.gen, dir: pageNewest, rows: statesDeployments()})
	// Docker goes away: the header says so at once.
	m.Update(eventsMsg{gen: m.live.gen, events: []api.Event{{Type: "docker", Status: "down",
		Message: "the Docker engine does not answer", At: statesNow.Add(-3 * time.Second)}}})
	return m
}

// statesGolden compares the frame, in the ANSI256 profile, with the golden.
func statesGolden(t *testing.T, m *Model) {
	t.Helper()
	var out bytes.Buffer
	w := &colorprofile.Writer{Forward: &out, Profile: colorprofile.ANSI256}
	if _, err := w.WriteString(m.View().Content); err != nil {
		t.Fatal(err)
	}
	teatest.RequireEqualOutput(t, out.Bytes())
}

// Every state the services and deployments draw, at the smallest size and
// a wide one: runtime states (glyph and colour differ from a healthy
// ACTIVE), frozen, the next deploy, the sparkline with a 5xx step, a warm
// standby's countdown, badges whole or as glyphs, Docker down in the header.
func TestStatesOnScreen(t *testing.T) {
	for _, size := range []struct {
		name string
		w, h int
	}{{"80x24", 80, 24}, {"200x50", 200, 50}} {
		t.Run(size.name, func(t *testing.T) {
			m := statesModel(t, size.w, size.h)
			frame := ansi.Strip(m.View().Content)
			for _, want := range []string{"docker down", "web", "frozen", "◍", "⊗", "↻",
				"#7"} {
				if !strings.Contains(frame, want) && !(want == "frozen" && strings.Contains(frame, "❄")) {
					t.Errorf("the services screen lacks %q:\n%s", want, frame)
				}
			}
			if strings.Contains(frame, "a-service-with-a-lon…") {
				t.Errorf("a name is cut:\n%s", frame)
			}
			if size.w > 100 && !strings.Contains(frame, "SHA256:Zm9vYmFy…") || strings.Contains(frame, "SHA256:Zm9vYmFyYmF6cXV4MTIz") {
				t.Errorf("the header's fingerprint is not shortened:\n%s", frame)
			}
			t.Run("services", func(t *testing.T) { statesGolden(t, m) })
			m.Update(tea.KeyPressMsg{Code: tea.KeyTab})
			t.Run("deployments", func(t *testing.T) { statesGolden(t, m) })
			frame = ansi.Strip(m.View().Content)
			if !strings.Contains(frame, "INACTIVE · warm, 4m left") && !strings.Contains(frame, "○ warm, 4m left") {
				t.Errorf("no warm countdown:\n%s", frame)
			}
			if !strings.Contains(frame, "q quit") {
				t.Errorf("the footer lost q quit:\n%s", frame)
			}
			// Docker comes back: said at once.
			m.Update(eventsMsg{gen: m.live.gen, events: []api.Event{{Type: "docker", Status: "up", At: statesNow}}})
			if frame := ansi.Strip(m.View().Content); !strings.Contains(frame, "docker up") {
				t.Errorf("Docker back, the header says:\n%s", strings.SplitN(frame, "\n", 2)[0])
			}
		})
	}
}

// The first-run banner (clank demo's hints) shows above the panes until the
// first key, which then does what it does.
func TestBannerUntilTheFirstKey(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(fakebackend.New(), Options{Context: ctx, Role: RoleAdmin, Width: 80, Height: 24,
		Banner: []string{"Welcome to the clank demo", "curl -H 'Host: web.localhost' http://127.0.0.1:8080/"}})
	m.Update(servicesMsg{services: statesServices()})
	frame := ansi.Strip(m.View().Content)
	if !strings.Contains(frame, "Welcome to the clank demo") || !strings.Contains(frame, "any key hides this") {
		t.Fatalf("no banner:\n%s", frame)
	}
	if n := len(strings.Split(m.View().Content, "\n")); n != 24 {
		t.Fatalf("with the banner the screen has %d lines", n)
	}
	press(m, keyDown)
	frame = ansi.Strip(m.View().Content)
	if strings.Contains(frame, "Welcome") {
		t.Fatalf("the banner stayed after a key:\n%s", frame)
	}
	if m.services.selectedName() != "api" {
		t.Fatalf("the first key hid the banner but did not move: %s selected", m.services.selectedName())
	}
}

// Opening a service's deployments asks the daemon to check its images again
// (it skips those checked in the last 30 s).
func TestOpeningDeploymentsRechecksImages(t *testing.T) {
	m, b := benchModel(t, 10)
	before := b.Rechecks.Load()
	cmd := m.deps.open("big")
	for _, c := range cmd().(tea.BatchMsg) {
		if msg := c(); msg != nil {
			m.Update(msg)
		}
	}
	if got := b.Rechecks.Load() - before; got != 1 {
		t.Fatalf("opening the deployments asked %d rechecks, want 1", got)
	}
}
