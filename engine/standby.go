package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clank-dev/clank/store"
)

// Warm standby (docs/architecture.md, "After the cutover"): during the watch window of a
// cutover, the replaced deployment's container keeps running out of the route
// (INACTIVE, warm_until in JSON) instead of being removed after its drain. A
// rollback to it inside the window is a new deployment as always, which
// adopts the running container after one passing probe instead of starting a
// new one. When the window ends the standby is stopped and removed. The store
// is the truth: a restart of Clank finds its standbys there, keeps those
// still due and removes the rest. A service has at most one standby: the
// deployment replaced last.

// keepWarm makes the drained deployment old a warm standby until until, if
// its container still runs and is old's; it reports whether it did. The
// service's previous standby, if any, is removed.
func (e *Engine) keepWarm(ctx context.Context, old store.Deployment, until time.Time) bool {
	bg := context.WithoutCancel(ctx)
	c, err := e.verify(ctx, old, old.ContainerID)
	if err != nil || !c.Running {
		return false
	}
	msg := fmt.Sprintf("drained; kept warm until %s for a rollback in the watch window", until.Local().Format(time.TimeOnly))
	warm, err := e.store.Standby(bg, old.ID, until, msg)
	if err != nil {
		e.log.Error("record warm standby", "deployment", old.ID, "err", err)
		return false
	}
	e.publishDeployment(warm, msg)
	if others, err := e.store.ListStandbys(bg); err == nil {
		for _, o := range others {
			if o.Service == old.Service && o.ID != old.ID {
				e.removeStandby(bg, o, fmt.Sprintf("warm standby removed: #%d is the newer one", warm.Number))
			}
		}
	}
	e.pokeStandbys()
	return true
}

// removeStandby ends warm standby d and removes its container, unless
// someone (a rollback adopting it) ended it first.
func (e *Engine) removeStandby(ctx context.Context, d store.Deployment, msg string) {
	ended, ok, err := e.store.EndStandby(ctx, d.ID, msg)
	if err != nil {
		e.log.Error("end warm standby", "deployment", d.ID, "err", err)
		return
	}
	if !ok {
		return
	}
	if d.ContainerID != "" {
		if err := e.rt.Stop(ctx, d.ContainerID, e.opts.StopGrace); err != nil {
			e.log.Warn("remove warm standby", "deployment", d.ID, "err", err)
		}
	}
	e.publishDeployment(ended, msg)
}

// standbyLoop removes each warm standby when its window ends, and one whose
// container stopped or went. It reads the standbys from the store, so it
// knows those of a previous run too; a poke (a new standby, a container's
// exit, a reconnect to Docker) has it look again.
func (e *Engine) standbyLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := e.reconcileStandbys(ctx)
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-e.standbyPoke:
		case <-timer.C:
		}
	}
}

// pokeStandbys has the standby loop look at the standbys now.
func (e *Engine) pokeStandbys() {
	select {
	case e.standbyPoke <- struct{}{}:
	default: // a look is pending already
	}
}

// reconcileStandbys keeps the standbys still due whose container runs and is
// theirs, removes the rest, and returns when the next one ends (zero if none
// is left).
func (e *Engine) reconcileStandbys(ctx context.Context) time.Time {
	ds, err := e.store.ListStandbys(ctx)
	if err != nil {
		e.log.Warn("list warm standbys", "err", err)
		return time.Now().Add(time.Minute)
	}
	var next time.Time
	for _, d := range ds {
		if !time.Now().Before(*d.WarmUntil) {
			e.removeStandby(ctx, d, "watch window over: warm standby removed")
			continue
		}
		c, err := e.verify(ctx, d, d.ContainerID)
		switch {
		case err == nil && c.Running,
			err != nil && !errors.Is(err, ErrContainerNotFound) && !errors.Is(err, errNotOurs): // Docker does not answer: look again later
			if next.IsZero() || d.WarmUntil.Before(next) {
				next = *d.WarmUntil
			}
			continue
		}
		if errors.Is(err, errNotOurs) {
			d.ContainerID = "" // not ours to remove
		}
		e.removeStandby(ctx, d, "warm standby lost: its container stopped or went")
	}
	return next
}

// adoptStandby gives deployment d (a rollback to target) target's warm
// standby container, if target is one: claimed from the store (so that its
// window's end cannot remove it now), verified with Docker, recorded as d's.
// ok is false when there is nothing to adopt; a standby that fails the
// checks is removed, and d starts a container of its own.
func (e *Engine) adoptStandby(ctx context.Context, d store.Deployment, target store.Deployment) (Container, bool) {
	if target.WarmUntil == nil || !time.Now().Before(*target.WarmUntil) {
		return Container{}, false
	}
	bg := context.WithoutCancel(ctx)
	msg := fmt.Sprintf("warm standby adopted by #%d", d.Number)
	ended, ok, err := e.store.EndStandby(bg, target.ID, msg)
	if err != nil || !ok {
		return Container{}, false
	}
	e.publishDeployment(ended, msg)
	c, err := e.verify(ctx, target, target.ContainerID)
	if err != nil || !c.Running {
		e.log.Warn("warm standby not adoptable: starting a new container", "deployment", d.ID, "standby", target.ID, "err", err)
		if err == nil {
			e.rt.Stop(bg, c.ID, 0)
		}
		return Container{}, false
	}
	if err := e.store.AdoptContainer(bg, d.ID, c.ID, c.HostPort, labelOf(c)); err != nil {
		e.log.Error("record adopted container", "deployment", d.ID, "err", err)
		e.rt.Stop(bg, c.ID, 0)
		return Container{}, false
	}
	return c, true
}
