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
// adopts the running containers (by replica slot, up to the service's
// current count) after one passing probe each instead of starting new ones. When the window ends the standby is stopped and removed. The store
// is the truth: a restart of Clank finds its standbys there, keeps those
// still due and removes the rest. A service has at most one standby: the
// deployment replaced last.

// keepWarm makes the drained deployment old a warm standby until until, if
// one of its containers still runs and is old's; it reports whether it did.
// The service's previous standby, if any, is removed.
func (e *Engine) keepWarm(ctx context.Context, old store.Deployment, until time.Time) bool {
	bg := context.WithoutCancel(ctx)
	running := 0
	for _, r := range old.Containers {
		if c, err := e.verify(ctx, old, r); err == nil && c.Running {
			running++
		}
	}
	if running == 0 {
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
				e.removeStandby(bg, o, containerIDs(o), fmt.Sprintf("warm standby removed: #%d is the newer one", warm.Number))
			}
		}
	}
	e.pokeStandbys()
	return true
}

// removeStandby ends warm standby d and removes its containers ids, unless
// someone (a rollback adopting it) ended it first.
func (e *Engine) removeStandby(ctx context.Context, d store.Deployment, ids []string, msg string) {
	ended, ok, err := e.store.EndStandby(ctx, d.ID, msg)
	if err != nil {
		e.log.Error("end warm standby", "deployment", d.ID, "err", err)
		return
	}
	if !ok {
		return
	}
	e.stopReplicas(ctx, d, ids, e.opts.StopGrace)
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
			e.removeStandby(ctx, d, containerIDs(d), "watch window over: warm standby removed")
			continue
		}
		// Kept while one of its containers runs (or Docker does not answer:
		// look again later); the containers that are not its own are not
		// its to remove.
		keep := false
		var ours []string
		for _, r := range d.Containers {
			c, err := e.verify(ctx, d, r)
			switch {
			case err == nil && c.Running,
				err != nil && !errors.Is(err, ErrContainerNotFound) && !errors.Is(err, errNotOurs):
				keep = true
			}
			if !errors.Is(err, errNotOurs) {
				ours = append(ours, r.ContainerID)
			}
		}
		if keep {
			if next.IsZero() || d.WarmUntil.Before(next) {
				next = *d.WarmUntil
			}
			continue
		}
		e.removeStandby(ctx, d, ours, "warm standby lost: its containers stopped or went")
	}
	return next
}

// adoptStandby gives deployment d (a rollback to target) target's warm
// standby containers, if target is one: claimed from the store (so that its
// window's end cannot remove them now), each verified with Docker and
// recorded as d's in the same slot, up to d's replica count. It returns the
// adopted containers by slot (none when there is nothing to adopt); a
// container that fails the checks, or whose slot d does not run, is removed,
// and d starts a container of its own for each slot left.
func (e *Engine) adoptStandby(ctx context.Context, d store.Deployment, target store.Deployment) map[int]Container {
	if target.WarmUntil == nil || !time.Now().Before(*target.WarmUntil) {
		return nil
	}
	bg := context.WithoutCancel(ctx)
	msg := fmt.Sprintf("warm standby adopted by #%d", d.Number)
	ended, ok, err := e.store.EndStandby(bg, target.ID, msg)
	if err != nil || !ok {
		return nil
	}
	e.publishDeployment(ended, msg)
	adopted := map[int]Container{}
	for _, r := range target.Containers {
		c, err := e.verify(ctx, target, r)
		switch {
		case err != nil || !c.Running:
			e.log.Warn("warm standby container not adoptable: starting a new one", "deployment", d.ID, "standby", target.ID, "replica", r.Slot, "err", err)
		case r.Slot >= replicaCount(d):
			e.log.Info("warm standby container beyond the service's replica count: removed", "deployment", d.ID, "standby", target.ID, "replica", r.Slot)
		default:
			err = e.store.SetReplica(bg, d.ID, store.Replica{Slot: r.Slot, ContainerID: c.ID, HostPort: c.HostPort, Label: labelOf(c)})
			if err == nil {
				adopted[r.Slot] = c
				continue
			}
			e.log.Error("record adopted container", "deployment", d.ID, "err", err)
		}
		if !errors.Is(err, errNotOurs) {
			e.rt.Stop(bg, r.ContainerID, 0)
		}
	}
	return adopted
}
