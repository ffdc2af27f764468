package ui_test

import (
	"context"
	"testing"
	"time"

	"github.com/charmbracelet/colorprofile"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/fakebackend"
)

// now is the dashboard's clock in tests: ages are relative to it.
var now = fakebackend.Epoch.Add(50 * time.Hour)

// demoBackend is a small world: web with a history that has everything a
// rollback can meet, api with two deployments, worker never deployed.
func demoBackend() *fakebackend.Backend {
	b := fakebackend.New()
	b.SetClock(func() time.Time { return now })
	b.AddService(api.Service{Name: "web", Image: "nginx:1.26", Port: 8080, Domains: []string{"web.localhost"},
		EnvKeys: []string{"API_KEY", "DB_URL", "FEATURE_X"}, HealthCheck: api.HealthCheck{Path: "/healthz", Interval: "1s", Timeout: "5s"}})
	b.AddService(api.Service{Name: "api", Image: "ghcr.io/acme/api:2.1", Port: 3000, Domains: []string{"api.localhost"}})
	b.AddService(api.Service{Name: "worker", Image: "acme/worker:dev", Port: 9000})

	at := func(h int) time.Time { return fakebackend.Epoch.Add(time.Duration(h) * time.Hour) }
	active := func(t time.Time) *time.Time { t = t.Add(30 * time.Second); return &t }
	hc := api.HealthCheck{Path: "/healthz", Interval: "1s", Timeout: "5s"}
	b.AddDeployment(api.Deployment{Service: "web", Status: "INACTIVE", Image: "nginx:1.23", Port: 8080, HealthCheck: hc,
		EnvKeys: []string{"API_KEY"}, CreatedAt: at(1), ActivatedAt: active(at(1)), ImageAvailability: "missing",
		ImageSource: "local", TriggeredBy: "alice"})
	b.AddDeployment(api.Deployment{Service: "web", Status: "INACTIVE", Image: "nginx:1.24", Port: 8080, HealthCheck: hc,
		EnvKeys: []string{"API_KEY", "DB_URL"}, CreatedAt: at(10), ActivatedAt: active(at(10)), RollbackCapable: true,
		ImageAvailability: "available", ImageSource: "registry", TriggeredBy: "alice"})
	b.AddDeployment(api.Deployment{Service: "web", Status: "FAILED", Image: "nginx:1.25", Port: 8080, HealthCheck: hc,
		EnvKeys: []string{"API_KEY", "DB_URL"}, CreatedAt: at(20), ImageAvailability: "available", ImageSource: "registry",
		TriggeredBy: "bob (SHA256:q1w2e3)", FailureReason: "health check /healthz: 503 after 60s"})
	src := "web-2"
	b.AddDeployment(api.Deployment{Service: "web", Kind: "rollback", SourceDeploymentID: &src, SourceNumber: 2,
		Status: "INACTIVE", Image: "nginx:1.24", Port: 8080, HealthCheck: hc, EnvKeys: []string{"API_KEY", "DB_URL"},
		Env: map[string]string{"API_KEY": "s3cr3t-value", "DB_URL": "postgres://u:pw@db/web"}, CreatedAt: at(21),
		CPUs: 0.5, Memory: 256 << 20, Domains: []string{"web.localhost"}, DeployTimeout: "60s",
		ImageDigest: "sha256:4f1c0ffee5e1d9c2b7a8e6f3d2c1b0a99887766554433221100ffeeddccbbaa", ActivatedAt: active(at(21)), RollbackCapable: true, ImageAvailability: "available",
		ImageSource: "registry", TriggeredBy: "bob (SHA256:q1w2e3)"})
	b.AddDeployment(api.Deployment{Service: "web", Status: "ACTIVE", Image: "nginx:1.26", Port: 8081,
		HealthCheck: api.HealthCheck{Path: "/ready", Interval: "2s", Timeout: "5s"},
		EnvKeys:     []string{"API_KEY", "DB_URL", "FEATURE_X"}, CPUs: 1, Memory: 512 << 20, DeployTimeout: "60s",
		Env:     map[string]string{"API_KEY": "n3w-s3cr3t", "DB_URL": "postgres://u:pw@db/web", "FEATURE_X": "on"},
		Domains: []string{"web.localhost", "www.example.test"}, CreatedAt: at(40), ActivatedAt: active(at(40)),
		RollbackCapable: true, ImageAvailability: "available", ImageSource: "registry", TriggeredBy: "carol"})
	for i, step := range []struct{ status, msg string }{
		{"DEPLOYING", "rollback of #2 by bob: creating container"},
		{"HEALTH_CHECKING", "probing /healthz on 127.0.0.1:49153"},
		{"ACTIVE", "serving web.localhost"},
		{"INACTIVE", "replaced by #5"},
	} {
		h := 21
		if i == 3 {
			h = 40
		}
		b.AddEvent(api.Event{Type: "deployment", Service: "web", DeploymentID: "web-4", Status: step.status,
			Message: step.msg, At: at(h).Add(time.Duration(i) * time.Second)})
	}
	b.Refuse("web", 1, "image nginx:1.23 is gone: it was built locally and the engine no longer has it")
	b.Refuse("web", 3, "#3 was never ACTIVE")

	b.AddDeployment(api.Deployment{Service: "api", Status: "INACTIVE", Image: "ghcr.io/acme/api:2.0", Port: 3000,
		CreatedAt: at(5), ActivatedAt: active(at(5)), RollbackCapable: true, ImageAvailability: "available",
		ImageSource: "external", TriggeredBy: "alice"})
	b.AddDeployment(api.Deployment{Service: "api", Status: "ACTIVE", Image: "ghcr.io/acme/api:2.1", Port: 3000,
		CreatedAt: at(30), ActivatedAt: active(at(30)), RollbackCapable: true, ImageAvailability: "available",
		ImageSource: "external", TriggeredBy: "alice"})
	b.SetLogs("web", "GET / 200 1.2ms\nGET /healthz 200 0.1ms\n")
	return b
}

// options are the dashboard's options in tests: a fixed clock, a colour
// profile, and a context that ends with the test.
func options(t testing.TB, role ui.Role) ui.Options {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ui.Options{Context: ctx, Role: role, Actor: "tester", Now: func() time.Time { return now },
		ColorProfile: colorprofile.ANSI256}
}
