package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/clank-dev/clank/store"
)

// ErrFrozen: a deploy that came from a git push, while a rollback has frozen
// pushes for the service. It matches ErrRefused too.
var ErrFrozen = errors.New("frozen")

// frozenRefusal says why a push does not deploy, and how to go on.
func frozenRefusal(svc store.Service) error {
	f := svc.Freeze
	return &refusal{
		msg: fmt.Sprintf("service %s is frozen since %s by %s (%s): pushes build but do not deploy; "+
			"deploy the build with `clank deploy --service %s --image IMAGE`, or lift the freeze with `clank unfreeze --service %s` and push again",
			svc.Name, f.At.Local().Format(time.DateTime), f.By, f.Reason, svc.Name, svc.Name),
		cause: ErrFrozen,
	}
}

// freezeFor freezes pushes for rollback d's service: whoever rolled back
// decides when pushes deploy again. Every rollback, by hand or automatic,
// comes through Act, and so here.
func (e *Engine) freezeFor(ctx context.Context, d store.Deployment, target *store.Deployment) {
	reason := fmt.Sprintf("rollback #%d to #%d", d.Number, target.Number)
	if _, err := e.store.SetFreeze(ctx, d.Service, &store.Freeze{By: d.TriggeredBy, Reason: reason}); err != nil {
		e.log.Error("freeze pushes after a rollback", "service", d.Service, "err", err)
		return
	}
	e.log.Info("pushes frozen", "service", d.Service, "reason", reason, "by", d.TriggeredBy)
	e.publish(Event{Type: EventService, Service: d.Service, Message: "pushes frozen: " + reason})
}

// liftFreeze lifts a service's freeze, if any, and says who did (an explicit
// deploy, or unfreeze). It returns the freeze it lifted.
func (e *Engine) liftFreeze(ctx context.Context, service, why string) (*store.Freeze, error) {
	before, err := e.store.SetFreeze(ctx, service, nil)
	if err != nil {
		return nil, err
	}
	if before != nil {
		e.log.Info("freeze lifted", "service", service, "by", why)
		e.publish(Event{Type: EventService, Service: service, Message: "freeze lifted: " + why})
	}
	return before, nil
}

// Unfreeze lets pushes deploy the service again. It returns the freeze it
// lifted, nil if the service was not frozen.
func (e *Engine) Unfreeze(ctx context.Context, service, by string) (*store.Freeze, error) {
	if _, err := e.Service(ctx, service); err != nil {
		return nil, err
	}
	return e.liftFreeze(ctx, service, "unfreeze by "+by)
}

// HoldImage records the image a push built while the service was frozen, so
// that it is not lost: `clank services` shows it until a deploy.
func (e *Engine) HoldImage(ctx context.Context, service, image string) error {
	if err := e.store.SetHeldImage(ctx, service, image); err != nil {
		return e.storeErr(err, fmt.Sprintf("unknown service %q", service))
	}
	e.publish(Event{Type: EventService, Service: service, Message: "push held while frozen: " + image})
	return nil
}
