package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distribution/reference"

	"github.com/clank-dev/clank/store"
)

// Request asks for a deploy, a redeploy or a rollback.
type Request struct {
	Kind        store.Kind
	Service     string
	Deployment  string // id or number of the target, for redeploy and rollback
	Image       string // deploy only: set the service's image first
	TriggeredBy string
	// AllowSchemaChange lets a rollback or redeploy run an image whose
	// schema label differs from the ACTIVE deployment's (never automatic).
	AllowSchemaChange bool
	// GitPush marks a deploy that a git push asked for: refused while a
	// rollback has frozen the service, where an explicit deploy lifts it.
	GitPush bool
}

// Plan says what req would do without doing anything: the snapshot the new
// deployment would run, the changes against the current ACTIVE deployment, or
// (in Plan.Refusal) why it would be refused. The error is for requests that
// cannot even be planned: an unknown service or deployment, bad input.
func (e *Engine) Plan(ctx context.Context, req Request) (Plan, error) {
	p, err := e.plan(ctx, req)
	if err != nil {
		return p, err
	}
	if p.Refusal == nil {
		e.mu.Lock()
		busy, ok := e.inflight[req.Service]
		e.mu.Unlock()
		if ok {
			p.Refusal = e.inProgress(ctx, req, busy)
		}
	}
	return p, nil
}

func (e *Engine) plan(ctx context.Context, req Request) (Plan, error) {
	p := Plan{Kind: req.Kind}
	svc, err := e.Service(ctx, req.Service)
	if err != nil {
		return p, err
	}
	p.Service = svc
	if svc.ActiveDeploymentID != "" {
		cur, err := e.store.GetDeployment(ctx, svc.ActiveDeploymentID)
		if err != nil {
			return p, fmt.Errorf("active deployment of %s: %w", svc.Name, err)
		}
		p.Current = &cur
	}
	if err := e.Ping(ctx); err != nil {
		return p, err
	}
	switch req.Kind {
	case store.KindDeploy:
		if req.GitPush && svc.Freeze != nil {
			p.Refusal = frozenRefusal(svc)
			return p, nil
		}
		p.Config = svc.Config
		if req.Image != "" {
			if err := ValidateImage(req.Image); err != nil {
				return p, err
			}
			p.Config.Image = req.Image
		}
		p.ImageDigest, p.ImageSource, err = e.resolveImage(ctx, p.Config.Image)
		if err != nil {
			return p, err
		}
	case store.KindRedeploy, store.KindRollback:
		if err := e.planFromTarget(ctx, req, &p); err != nil || p.Refusal != nil {
			return p, err
		}
	default:
		return p, &invalid{fmt.Sprintf("unknown action %q: want deploy, redeploy or rollback", req.Kind)}
	}
	if p.Refusal == nil {
		p.Refusal = e.swarmLocalRefusal(p.Config.Image, p.ImageSource)
	}
	if p.Refusal == nil {
		if err := e.checkDomains(ctx, svc.Name, p.Config.Domains); err != nil {
			if req.Kind == store.KindRollback && p.Target != nil {
				// The user named no domain: the target's snapshot brings it back.
				err = refuse(err, fmt.Sprintf("cannot roll back to deployment #%d: its snapshot restores a domain another service owns now: %v", p.Target.Number, err))
			}
			p.Refusal = err
		}
	}
	if p.Current != nil {
		p.Changes = Diff(p.Current.Config, p.Config, p.Current.ImageDigest, p.ImageDigest)
	}
	if p.SchemaChange = schemaChange(p.Current, p.Target); p.SchemaChange != nil && p.Refusal == nil && !req.AllowSchemaChange {
		p.Refusal = schemaRefusal(req.Kind, p.Current, p.Target)
	}
	return p, nil
}

// planFromTarget fills p for a redeploy or rollback: the target deployment and
// the snapshot to run, or the refusal.
func (e *Engine) planFromTarget(ctx context.Context, req Request, p *Plan) error {
	svc := p.Service
	var target store.Deployment
	var err error
	switch {
	case req.Deployment != "":
		target, err = e.Deployment(ctx, svc.Name, req.Deployment)
		if err != nil {
			return err
		}
	case req.Kind == store.KindRollback:
		target, err = e.store.LastActivated(ctx, svc.Name, svc.ActiveDeploymentID)
		if errors.Is(err, store.ErrNotFound) {
			p.Refusal = NoRollbackTarget(svc.Name)
			return nil
		}
		if err != nil {
			return err
		}
	default:
		return &invalid{"redeploy needs --deployment ID"}
	}
	p.Target = &target
	if req.Kind == store.KindRollback {
		if p.Refusal = RollbackRefusal(svc, target); p.Refusal != nil {
			return nil
		}
		p.Config = target.Config
	} else {
		p.Config = svc.Config
		p.Config.Image = target.Config.Image
	}
	p.ImageDigest, p.ImageSource = target.ImageDigest, target.ImageSource
	if target.ImageDigest == "" {
		p.Refusal = refuse(nil, fmt.Sprintf("deployment #%d has no recorded image digest", target.Number))
		return nil
	}
	// Checked now, not from the cache: a rollback to a missing image is
	// refused before anything is created.
	if a := e.CheckImage(ctx, target); a.State == store.AvailabilityMissing {
		p.Refusal = ImageGone(req.Kind, target, a.Reason)
	}
	return nil
}

func (e *Engine) inProgress(ctx context.Context, req Request, busyID string) error {
	d, err := e.store.GetDeployment(ctx, busyID)
	if err != nil {
		return InProgress(req.Service, nil) // a claim not yet recorded
	}
	return InProgress(req.Service, &d)
}

// The refusals below are the engine's rules for a rollback or redeploy
// target, each with its one wording. They are exported so that the
// dashboard's rendering fake refuses with the engine's own words.

// NoRollbackTarget refuses a rollback without a target when service has no
// earlier deployment that was ACTIVE.
func NoRollbackTarget(service string) error {
	return refuse(nil, fmt.Sprintf("service %s has no earlier deployment that was ACTIVE to roll back to", service))
}

// RollbackRefusal says why target cannot be rolled back to in svc (it is the
// current ACTIVE deployment, or it was never ACTIVE), or nil if it can.
func RollbackRefusal(svc store.Service, target store.Deployment) error {
	switch {
	case target.ID == svc.ActiveDeploymentID:
		return refuse(nil, fmt.Sprintf("deployment #%d is the current ACTIVE deployment of %s: nothing to roll back to", target.Number, svc.Name))
	case target.ActivatedAt == nil:
		why := string(target.Status)
		if target.FailureReason != "" {
			why += ": " + target.FailureReason
		}
		return refuse(nil, fmt.Sprintf("deployment #%d of %s was never ACTIVE (%s): only a deployment that ran can be rolled back to", target.Number, svc.Name, why))
	}
	return nil
}

// ImageGone refuses a rollback or redeploy to target whose image is missing
// (why says where it went).
func ImageGone(kind store.Kind, target store.Deployment, why string) error {
	return refuse(nil, fmt.Sprintf("cannot %s to deployment #%d: its image %s@%s is gone (%s)", kind, target.Number, target.Config.Image, ShortDigest(target.ImageDigest), why))
}

// InProgress refuses an action on service while busy (nil: not recorded
// yet) is in progress.
func InProgress(service string, busy *store.Deployment) error {
	what := "another deployment"
	if busy != nil {
		what = fmt.Sprintf("deployment #%d (%s)", busy.Number, busy.Status)
	}
	return refuse(ErrInProgress, fmt.Sprintf("service %s: %s is in progress; wait for it to end", service, what))
}

// Act begins req and returns the new deployment (DEPLOYING) at once; the
// lifecycle goes on in the background and is streamed by Subscribe. A refused
// request creates nothing and changes nothing.
func (e *Engine) Act(ctx context.Context, req Request) (store.Deployment, error) {
	// One deployment in progress per service: claim the service first, so
	// that two concurrent requests cannot both pass the checks.
	claim, err := e.claim(ctx, req)
	if err != nil {
		return store.Deployment{}, err
	}
	started := false
	defer func() {
		if !started {
			e.release(req.Service, claim)
		}
	}()

	p, err := e.plan(ctx, req)
	if err != nil {
		return store.Deployment{}, err
	}
	if p.Refusal != nil {
		return store.Deployment{}, p.Refusal
	}
	if req.Kind == store.KindDeploy && req.Image != "" && req.Image != p.Service.Config.Image {
		img := req.Image
		if _, err := e.UpdateService(ctx, req.Service, ServicePatch{Image: &img}); err != nil {
			return store.Deployment{}, err
		}
	}
	d := store.Deployment{
		ID:          newID("d"),
		Service:     req.Service,
		Kind:        req.Kind,
		Config:      p.Config,
		ImageDigest: p.ImageDigest,
		ImageSource: p.ImageSource,
		TriggeredBy: req.TriggeredBy,
		Status:      store.StatusDeploying,
		// The service's scale, whatever the kind: a rollback in an incident
		// never scales a service down.
		Replicas: max(p.Service.Replicas, 1),
	}
	if p.Target != nil {
		d.SourceDeploymentID = p.Target.ID
		d.Schema = p.Target.Schema // the same image
	}
	if err := e.store.CreateDeployment(ctx, &d); err != nil {
		return store.Deployment{}, fmt.Errorf("%s %s: %w", req.Kind, req.Service, err)
	}
	e.mu.Lock()
	e.inflight[req.Service] = d.ID
	e.mu.Unlock()
	started = true
	// The deployment exists now: what goes with it is written even if the
	// caller goes away.
	bg := context.WithoutCancel(ctx)
	switch {
	case d.Kind == store.KindRollback:
		e.freezeFor(bg, d, p.Target)
	case d.Kind == store.KindDeploy && !req.GitPush:
		// An explicit deploy is the operator's word that pushes may deploy
		// again; it also settles a push held while frozen.
		if p.Service.Freeze != nil {
			if _, err := e.liftFreeze(bg, d.Service, fmt.Sprintf("deploy #%d by %s", d.Number, d.TriggeredBy)); err != nil {
				e.log.Error("lift the freeze on deploy", "service", d.Service, "err", err)
			}
		}
		if p.Service.HeldImage != "" {
			if err := e.store.SetHeldImage(bg, d.Service, ""); err != nil {
				e.log.Error("clear the held push", "service", d.Service, "err", err)
			}
		}
	}
	e.log.Info("deployment started", "service", d.Service, "deployment", d.ID, "number", d.Number, "kind", d.Kind, "image", d.Config.Image, "by", d.TriggeredBy)
	e.publishDeployment(d, "created") // as the store recorded it
	if !e.go_(func(ctx context.Context) { e.run(ctx, d, p.Current) }) {
		// Close began after the claim: the deployment never runs.
		e.release(req.Service, d.ID)
		if fd, err := e.store.Fail(context.WithoutCancel(ctx), d.ID, "the daemon stopped before the deployment began"); err == nil {
			e.publishDeployment(fd, fd.FailureReason)
		}
		return store.Deployment{}, ErrClosed
	}
	return d, nil
}

// finishingWait bounds how long a request waits for a deployment that is
// already ACTIVE to let go of its service (see claim).
const finishingWait = 2 * time.Second

// claim holds req's service for a new deployment, or says why not. A
// deployment the store already shows ACTIVE has only its last quick steps
// left (supervision, then the release): a request that comes then, as one
// that saw it ACTIVE would, waits for the release rather than be refused.
func (e *Engine) claim(ctx context.Context, req Request) (string, error) {
	deadline := time.Now().Add(finishingWait)
	for {
		e.mu.Lock()
		if e.closing {
			e.mu.Unlock()
			return "", ErrClosed
		}
		busy, ok := e.inflight[req.Service]
		if !ok {
			claim := newID("pending-")
			e.inflight[req.Service] = claim
			e.mu.Unlock()
			return claim, nil
		}
		released := e.released
		e.mu.Unlock()
		d, err := e.store.GetDeployment(ctx, busy)
		if err != nil || d.Status != store.StatusActive || time.Now().After(deadline) {
			return "", e.inProgress(ctx, req, busy)
		}
		select {
		case <-released:
		case <-time.After(time.Until(deadline)):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (e *Engine) release(service, id string) {
	e.mu.Lock()
	if e.inflight[service] == id {
		delete(e.inflight, service)
		close(e.released) // wake the claims waiting for it
		e.released = make(chan struct{})
	}
	e.mu.Unlock()
}

// resolveImage finds the digest to pin ref to and where the image comes from.
// A tag that was pushed or pulled is asked of its registry first, so that a
// moved tag deploys what it points at now, not a stale local copy. An image
// the local engine lacks and no registry answers for gets its digest after
// the pull, in DEPLOYING.
func (e *Engine) resolveImage(ctx context.Context, ref string) (digest, source string, err error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", "", &invalid{fmt.Sprintf("invalid image reference %q: %v", ref, err)}
	}
	remote := e.images.Source(ref)
	if c, ok := named.(reference.Canonical); ok {
		return c.Digest().String(), remote, nil // pinned by the user
	}
	info, err := e.rt.InspectImage(ctx, ref)
	local := ""
	switch {
	case errors.Is(err, ErrImageNotFound):
	case err != nil:
		return "", "", fmt.Errorf("%w: inspect image %s: %v", ErrUnavailable, ref, err)
	default:
		local = repoDigest(info, named)
		if local == "" {
			return info.ID, store.SourceLocal, nil // built here, never pushed
		}
	}
	if d, err := e.images.TagDigest(ctx, ref); err == nil && d != "" {
		if local != "" && d != local {
			e.log.Info("tag moved in its registry: deploying what it points at now", "image", ref, "local", ShortDigest(local), "registry", ShortDigest(d))
		}
		return d, remote, nil
	}
	return local, remote, nil // "" when neither knows: pulled in DEPLOYING
}

// repoDigest is the digest the local engine recorded for named's repository
// when the image was pushed or pulled, or "".
func repoDigest(info ImageInfo, named reference.Named) string {
	repo := named.Name()
	for _, rd := range info.RepoDigests {
		n, err := reference.ParseNormalizedNamed(rd)
		if err != nil {
			continue
		}
		if c, ok := n.(reference.Canonical); ok && n.Name() == repo {
			return c.Digest().String()
		}
	}
	return ""
}
