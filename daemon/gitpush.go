package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/gitsrc"
	"github.com/clank-dev/clank/store"
)

// objectIDRe is a whole object id (SHA-1 or SHA-256), the zero id included.
var objectIDRe = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// gitReceive serves POST /v1/services/{name}/git/receive: a git push to the
// service's repository (<data-dir>/git/<name>.git), handed over by its
// pre-receive hook through the SSH server before any ref moves. A push to
// the service's git branch is built exactly as `deploy --git` builds
// (daemon.build: the same tag, pushed to the Clank registry with the
// service's --push-builds) and deployed, unless a rollback froze the service:
// then the image is kept and held. Pushes to other branches are stored
// without a build. The answer streams api.BuildMessage lines, the build's and
// the lifecycle's output, then the result or the error, which rejects the
// push (no ref moves).
func (d *Daemon) gitReceive(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	var req api.GitPush
	if err := decode(r, &req); err != nil {
		writeErr(w, err)
		return
	}
	svc, err := d.Engine.Service(ctx, name)
	if err != nil {
		writeErr(w, err)
		return
	}
	dir := gitsrc.Dir(d.cfg.DataDir, name)
	push := gitsrc.Push{ObjectDir: req.ObjectDir, AlternateObjectDirs: req.AlternateObjectDirs}
	for _, u := range req.Updates {
		if !objectIDRe.MatchString(u.Old) || !objectIDRe.MatchString(u.New) || !strings.HasPrefix(u.Ref, "refs/") {
			writeErr(w, badRequest("invalid ref update %q %q %q", u.Old, u.New, u.Ref))
			return
		}
		push.Updates = append(push.Updates, gitsrc.RefUpdate{Old: u.Old, New: u.New, Ref: u.Ref})
	}
	if err := push.CheckObjectDirs(dir); err != nil {
		writeErr(w, badRequest("push to %s: %v", name, err))
		return
	}
	out, err := startStream(w)
	if err != nil {
		writeErr(w, err)
		return
	}
	result, err := d.receive(ctx, svc, dir, push, caller(r).Actor, out)
	if err != nil {
		d.log.Warn("git push refused", "service", name, "by", caller(r).Actor, "err", err)
		_, e := apiError(err)
		out.send(api.BuildMessage{Error: e.Error, Code: e.Code})
		return
	}
	d.log.Info("git push", "service", name, "by", caller(r).Actor, "result", result)
	out.send(api.BuildMessage{Result: result})
}

// receive acts on each ref a push moves: the service's branch is built and
// deployed, any other is only stored.
func (d *Daemon) receive(ctx context.Context, svc store.Service, dir string, p gitsrc.Push, actor string, out *buildStream) (string, error) {
	branch := "refs/heads/" + svc.Git.Branch
	result := "stored"
	for _, u := range p.Updates {
		switch {
		case u.Ref != branch:
			out.say("%s: stored; pushes to %s deploy %s", strings.TrimPrefix(u.Ref, "refs/heads/"), svc.Git.Branch, svc.Name)
			continue
		case u.New == gitsrc.ZeroID || strings.Trim(u.New, "0") == "":
			out.say("%s deleted: nothing to deploy", svc.Git.Branch)
			continue
		}
		res, err := d.buildAndDeploy(ctx, svc, dir, p.Env(), u.New, actor, out)
		if err != nil {
			return "", err
		}
		result = res
	}
	return result, nil
}

// buildAndDeploy builds commit and deploys it, following the deployment to
// ACTIVE or FAILED; a frozen service keeps the image and does not deploy it.
func (d *Daemon) buildAndDeploy(ctx context.Context, svc store.Service, dir string, env []string, commit, actor string, out *buildStream) (string, error) {
	short := commit[:shortCommit]
	if !gitsrc.HasDockerfile(ctx, dir, env, commit, "") {
		return "", &refusal{fmt.Sprintf("commit %s has no Dockerfile at the root of the repository: nothing to build", short)}
	}
	tag, err := d.buildTag(svc.Name, commit, svc.Git.PushBuilds)
	if err != nil {
		return "", err
	}
	if err := d.Engine.Ping(ctx); err != nil {
		return "", err
	}
	tar, err := gitsrc.Archive(ctx, dir, env, commit)
	if err != nil {
		return "", err
	}
	defer tar.Close()
	out.say("clank: building %s at %s as %s", svc.Name, short, tag)
	if err := d.build(ctx, svc.Name, tag, svc.Git.PushBuilds, tar, out); err != nil {
		return "", fmt.Errorf("build of %s at %s: %w", svc.Name, short, err)
	}
	// Subscribed first, so that no step of the deployment is missed.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := d.Engine.Subscribe(sctx)
	dep, err := d.Engine.Act(ctx, engine.Request{Kind: store.KindDeploy, Service: svc.Name, Image: tag, TriggeredBy: actor, GitPush: true})
	if errors.Is(err, engine.ErrFrozen) {
		// Recorded even if the pusher is gone by now: nothing built is lost.
		if err := d.Engine.HoldImage(context.WithoutCancel(ctx), svc.Name, tag); err != nil {
			return "", err
		}
		out.say("clank: %v", err)
		out.say("clank: the build is kept, not deployed: %s (clank deploy --service %s --image %s)", tag, svc.Name, tag)
		return "held", nil
	}
	if err != nil {
		return "", err
	}
	out.say("clank: deploy #%d of %s: %s", dep.Number, svc.Name, tag)
	return "deployed", follow(events, dep, out)
}

// follow prints each lifecycle step of dep until it is ACTIVE (nil) or
// FAILED or CANCELLED (an error with the reason). If the stream ends first
// (the pusher went away), the deployment goes on in the engine.
func follow(events <-chan engine.Event, dep store.Deployment, out *buildStream) error {
	start, last := time.Now(), dep.Status
	out.say("  %-16s %s", dep.Status, "started")
	for ev := range events {
		if ev.Deployment == nil || ev.Deployment.ID != dep.ID || ev.Deployment.Status == last {
			continue
		}
		dep, last = *ev.Deployment, ev.Deployment.Status
		out.say("  %-16s %s  (+%.2fs)", dep.Status, ev.Message, time.Since(start).Seconds())
		switch dep.Status {
		case store.StatusActive:
			return nil
		case store.StatusFailed, store.StatusCancelled:
			return &refusal{fmt.Sprintf("deployment #%d of %s %s: %s", dep.Number, dep.Service, dep.Status, dep.FailureReason)}
		}
	}
	return fmt.Errorf("lost track of deployment #%d of %s; it goes on: clank deployments --service %s", dep.Number, dep.Service, dep.Service)
}
