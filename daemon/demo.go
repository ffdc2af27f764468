package daemon

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/docker"
	"github.com/clank-dev/clank/store"
)

// DemoLabel marks the images the demo builds.
const DemoLabel = "dev.clank.demo"

// demoService is one service the demo sets up, and the versions it deploys.
type demoService struct {
	name     string
	versions []string
	// failing is a version deployed with HEALTH=fail: it ends FAILED while the
	// version before it keeps serving.
	failing string
}

var demoServices = []demoService{
	{name: "web", versions: []string{"v1", "v2", "v3"}},
	{name: "api", versions: []string{"v1", "v2"}, failing: "v3"},
	{name: "docs", versions: []string{"v1"}},
}

// SetUpDemo builds demo images from this very binary (it serves them as
// `clank sampleapp`), then creates and deploys the demo services unless they
// exist already. Progress goes to out.
func (d *Daemon) SetUpDemo(ctx context.Context, out io.Writer) error {
	if d.Runtime == nil || d.dockerErr != nil {
		return fmt.Errorf("the demo needs a Docker engine: %v", d.dockerErr)
	}
	existing, err := d.Engine.Services(ctx)
	if err != nil {
		return err
	}
	if len(existing) > 0 {
		fmt.Fprintf(out, "demo services exist already in %s: starting them as they were\n", d.cfg.DataDir)
		return nil
	}
	exe, err := staticSelf()
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "building demo images from this binary...")
	body, err := os.ReadFile(exe)
	if err != nil {
		return err
	}
	labels := map[string]string{DemoLabel: "true"}
	repo := DemoRepo()
	base := repo + "/app:base"
	tar, err := docker.TarContext([]docker.TarFile{
		{Name: "Dockerfile", Mode: 0o644, Body: []byte("FROM scratch\nCOPY clank /clank\nENTRYPOINT [\"/clank\", \"sampleapp\"]\n")},
		{Name: "clank", Mode: 0o755, Body: body},
	})
	if err != nil {
		return err
	}
	if _, err := d.Runtime.BuildImage(ctx, tar, base, labels, nil); err != nil {
		return fmt.Errorf("build %s: %w", base, err)
	}
	for _, im := range demoImages() {
		ref := im.ref(repo)
		tar, err := docker.TarContext([]docker.TarFile{{Name: "Dockerfile", Mode: 0o644,
			Body: fmt.Appendf(nil, "FROM %s\nENV VERSION=%s-%s\n", base, im.service, im.version)}})
		if err != nil {
			return err
		}
		if _, err := d.Runtime.BuildImage(ctx, tar, ref, labels, nil); err != nil {
			return fmt.Errorf("build %s: %w", ref, err)
		}
	}
	for _, s := range demoServices {
		cfg := store.Config{
			Image: demoImage{s.name, s.versions[0]}.ref(repo), Port: 8080,
			Env:    map[string]string{"GREETING": "hello", "API_TOKEN": "demo-secret-" + s.name},
			Health: store.HealthCheck{Path: "/healthz"}, DeployTimeout: 10 * time.Second,
			MemoryBytes: 64 << 20, CPUs: 0.5,
		}
		if _, err := d.Engine.CreateService(ctx, s.name, cfg); err != nil {
			return err
		}
		for i, v := range s.versions {
			if i == 1 {
				// the second release changes a setting too, so that a
				// rollback has something to restore
				if _, err := d.Engine.UpdateService(ctx, s.name, engine.ServicePatch{SetEnv: map[string]string{"FEATURE_FLAG": "on"}}); err != nil {
					return err
				}
			}
			if err := d.demoDeploy(ctx, out, s.name, demoImage{s.name, v}.ref(repo)); err != nil {
				return err
			}
		}
		if s.failing != "" {
			env := map[string]string{"HEALTH": "fail"}
			if _, err := d.Engine.UpdateService(ctx, s.name, engine.ServicePatch{SetEnv: env}); err != nil {
				return err
			}
			timeout := 3 * time.Second
			if _, err := d.Engine.UpdateService(ctx, s.name, engine.ServicePatch{DeployTimeout: &timeout}); err != nil {
				return err
			}
			if err := d.demoDeploy(ctx, out, s.name, demoImage{s.name, s.failing}.ref(repo)); err == nil {
				return errors.New("the demo's failing deployment did not fail")
			}
			ten := 10 * time.Second
			if _, err := d.Engine.UpdateService(ctx, s.name, engine.ServicePatch{UnsetEnv: []string{"HEALTH"}, DeployTimeout: &ten}); err != nil {
				return err
			}
		}
	}
	return nil
}

// demoDeploy deploys image to service and waits for ACTIVE (nil) or FAILED.
func (d *Daemon) demoDeploy(ctx context.Context, out io.Writer, service, image string) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := d.Engine.Subscribe(wctx)
	dep, err := d.Engine.Act(ctx, engine.Request{Kind: store.KindDeploy, Service: service, Image: image, TriggeredBy: "demo"})
	if err != nil {
		return err
	}
	for ev := range events {
		if ev.Deployment == nil || ev.Deployment.ID != dep.ID {
			continue
		}
		switch ev.Deployment.Status {
		case store.StatusActive:
			fmt.Fprintf(out, "  %s #%d %s: ACTIVE\n", service, dep.Number, image)
			return nil
		case store.StatusFailed:
			fmt.Fprintf(out, "  %s #%d %s: FAILED (%s)\n", service, dep.Number, image, ev.Deployment.FailureReason)
			return errors.New(ev.Deployment.FailureReason)
		}
	}
	return ctx.Err()
}

// DemoRepo is where the demo's images are tagged: clank-demo, or
// CLANK_DEMO_REPO (tests use their own, so that they never touch a user's).
func DemoRepo() string {
	if r := os.Getenv("CLANK_DEMO_REPO"); r != "" {
		return r
	}
	return "clank-demo"
}

// demoImage is one version of a demo service's image.
type demoImage struct{ service, version string }

func (im demoImage) ref(repo string) string {
	return fmt.Sprintf("%s/%s:%s", repo, im.service, im.version)
}

// demoImages lists every version the demo builds, the failing ones too.
func demoImages() []demoImage {
	var out []demoImage
	for _, s := range demoServices {
		for _, v := range s.versions {
			out = append(out, demoImage{s.name, v})
		}
		if s.failing != "" {
			out = append(out, demoImage{s.name, s.failing})
		}
	}
	return out
}

// DemoImages lists the image references the demo tags under repo.
func DemoImages(repo string) []string {
	refs := []string{repo + "/app:base"}
	for _, im := range demoImages() {
		refs = append(refs, im.ref(repo))
	}
	return refs
}

// DemoServices names the services the demo sets up.
func DemoServices() []string {
	names := make([]string, len(demoServices))
	for i, s := range demoServices {
		names[i] = s.name
	}
	return names
}

// staticSelf is this executable's path, if it is statically linked: the demo
// images run it FROM scratch.
func staticSelf() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := elf.Open(exe)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", exe, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", errors.New("the demo runs this binary inside its containers, so it must be static: build it with CGO_ENABLED=0 (see the README)")
		}
	}
	return exe, nil
}
