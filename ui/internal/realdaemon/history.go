package realdaemon

import (
	"testing"

	"github.com/clank-dev/clank/api"
)

// Secret values History puts in env: no screen may show them.
var Secrets = []string{"s3cr3t-one", "n3w-s3cr3t", "postgres://u:pw@db/web"}

// HistoryWorld is History's state, with the deployments named by role.
type HistoryWorld struct {
	*World
	// web, newest first: #5 ACTIVE (v3, new env, port, health, limits and
	// domains); #4 a rollback of #1, INACTIVE; #3 FAILED (never ACTIVE);
	// #2 v2, INACTIVE and rollback capable; #1 v1. v1 was removed from
	// Docker afterwards: #1 and #4 show "image gone".
	Web [6]api.Deployment // by number; [0] unused
	// api: #2 ACTIVE; #1 INACTIVE, but it had shop.localhost, which worker
	// claims now (a rollback to it is refused: domain taken).
	API [3]api.Deployment
	// worker never deployed.
}

// History starts a daemon and gives it a history that meets every rule a
// rollback can meet, through the API as an operator would: services web,
// api and worker (see HistoryWorld). Deployments are made one at a time, so
// numbers and order are the same on every run.
func History(t testing.TB) *HistoryWorld {
	t.Helper()
	w := &HistoryWorld{World: New(t)}
	v1, v2, v3 := w.Image("v1"), w.Image("v2"), w.Image("v3")
	str := func(s string) *string { return &s }

	w.CreateService("web", v1, func(s *api.ServiceSpec) { s.Env = map[string]string{"API_KEY": "s3cr3t-one"} })
	w.Web[1] = w.Deploy("web", v1)
	w.Update("web", api.ServiceSpec{Env: map[string]string{"DB_URL": "postgres://u:pw@db/web"}})
	w.Web[2] = w.Deploy("web", v2)
	// #3 fails its health check: the app answers 500 with HEALTH=fail.
	w.Update("web", api.ServiceSpec{Env: map[string]string{"HEALTH": "fail"}, DeployTimeout: str("2s")})
	d := w.Act(api.ActionRequest{Kind: "deploy", Service: "web", Image: v3})
	w.Web[3] = w.WaitStatus(d.ID, "FAILED", DeployWithin)
	w.Update("web", api.ServiceSpec{UnsetEnv: []string{"HEALTH"}, DeployTimeout: str(DeployWithin.String())})
	d = w.Act(api.ActionRequest{Kind: "rollback", Service: "web", Deployment: w.Web[1].ID})
	w.Web[4] = w.WaitStatus(d.ID, "ACTIVE", DeployWithin)
	// #5 changes everything a diff can show.
	port, cpus := 8081, 0.5
	w.Update("web", api.ServiceSpec{Port: &port, Env: map[string]string{"PORT": "8081", "API_KEY": "n3w-s3cr3t", "FEATURE_X": "on"},
		HealthPath: str("/"), HealthInterval: str("2s"), CPUs: &cpus, Memory: str("64m"),
		Domains: []string{"web.localhost", "www.example.test"}})
	w.Web[5] = w.Deploy("web", v3)

	w.CreateService("api", v2, func(s *api.ServiceSpec) { s.Domains = []string{"api.localhost", "shop.localhost"} })
	w.API[1] = w.Deploy("api", v2)
	w.Update("api", api.ServiceSpec{Domains: []string{"api.localhost"}})
	w.API[2] = w.Deploy("api", v3)
	w.CreateService("worker", v1, func(s *api.ServiceSpec) { s.Domains = []string{"worker.localhost", "shop.localhost"} })

	// v1 goes from the engine: only web #1 and #4 ran it (worker never deployed).
	w.Settle("web")
	w.Settle("api")
	w.RemoveImage(v1)
	w.WaitAvailability("web", 1, "missing")
	for _, n := range []int{1, 2, 3, 4, 5} {
		w.Web[n] = w.Number("web", n)
	}
	w.API[1], w.API[2] = w.Number("api", 1), w.Number("api", 2)
	return w
}
