package swarm_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	dockerregistry "github.com/moby/moby/api/types/registry"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/daemon"
	"github.com/clank-dev/clank/engine/swarm"
	"github.com/clank-dev/clank/internal/testdocker"
)

func TestServeOnSwarmIsRefusedOffAManager(t *testing.T) {
	rt := testdocker.Require(t)
	testdocker.NoSwarm(t, rt)
	dir := t.TempDir()
	_, err := daemon.Start(context.Background(), daemon.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Runtime: daemon.RuntimeSwarm,
		Logger: slog.New(slog.DiscardHandler)})
	if !errors.Is(err, swarm.ErrNotManager) || !strings.Contains(err.Error(), "docker swarm init") {
		t.Fatalf("clank serve --runtime swarm off a Swarm manager: %v", err)
	}
	// The data dir is free again: a daemon on Docker starts there.
	d, err := daemon.Start(context.Background(), daemon.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("after the refusal: %v", err)
	}
	defer d.Close(context.Background())
	c := api.NewClient(d.Socket())
	if nodes, err := c.Nodes(context.Background()); err != nil || len(nodes) != 0 {
		t.Fatalf("clank nodes on Docker: %+v %v; want none", nodes, err)
	}
	if st, err := c.Status(context.Background()); err != nil || st.Runtime != "docker" {
		t.Fatalf("status on Docker: %+v %v", st, err)
	}
}

// TestServeOnSwarm: the daemon on Swarm deploys a Clank registry image
// (the nodes pull it with the registry's credential) with a placement
// constraint, and lists the nodes with the task on them.
func TestServeOnSwarm(t *testing.T) {
	rt := testdocker.Require(t)
	testdocker.Swarm(t, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := daemon.Start(ctx, daemon.Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", RegistryAddr: "127.0.0.1:0",
		Runtime: daemon.RuntimeSwarm, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background())
	c := api.NewClient(d.Socket())
	st, err := c.Status(ctx)
	if err != nil || st.Runtime != "swarm" {
		t.Fatalf("status %+v %v", st, err)
	}
	rc, err := c.RegistryCredential(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cred := dockerregistry.AuthConfig{Username: rc.Username, Password: rc.Password, ServerAddress: rc.Registry}
	ref := d.RegistryAddr() + "/web:v1"
	src := testdocker.SampleImage(t, rt, "v1")
	if err := rt.TagImage(ctx, src, ref); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testdocker.RemoveImage(t, rt, ref) })
	if err := rt.PushImage(ctx, ref, cred, nil); err != nil {
		t.Fatal(err)
	}
	port, path, constraint := testdocker.SampleAppPort, "/healthz", []string{"node.role==manager"}
	if _, err := c.CreateService(ctx, api.ServiceSpec{Name: "web", Image: &ref, Port: &port, HealthPath: &path, Constraints: &constraint}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteService(context.Background(), "web", false) })
	dep, err := c.Act(ctx, api.ActionRequest{Kind: "deploy", Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	var got api.Deployment
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if got, _, err = c.Deployment(ctx, dep.ID); err == nil && (got.Status == "ACTIVE" || got.Status == "FAILED") && len(got.Tasks) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %+v %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.Status != "ACTIVE" || len(got.Constraints) != 1 || got.Constraints[0] != "node.role==manager" {
		t.Fatalf("deployment %s (%s), constraints %v", got.Status, got.FailureReason, got.Constraints)
	}
	if tk := got.Tasks[0]; tk.Node == "" || !strings.HasPrefix(tk.Addr, "127.0.0.1:") {
		t.Fatalf("task %+v: want its node and 127.0.0.1:PORT", tk)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.RouterAddr()+"/", nil)
	req.Host = "web.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("through the router: %v %v", resp, err)
	}
	resp.Body.Close()
	// clank logs: the output of the deployment's tasks, through Swarm.
	var logs strings.Builder
	if err := c.Logs(ctx, "web", "", api.LogOptions{}, &logs); err != nil || !strings.Contains(logs.String(), "sampleapp v1 listening on") {
		t.Fatalf("logs of the deployment on Swarm: %v\n%s", err, logs.String())
	}
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].Tasks != 1 || !nodes[0].Leader {
		t.Fatalf("nodes %+v %v", nodes, err)
	}
}
