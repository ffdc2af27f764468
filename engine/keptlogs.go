package engine

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/clank-dev/clank/store"
)

// Logs that outlive containers (docs/architecture.md, "Kept logs"): a
// container's log lives in the container, so every container of this
// instance that the engine removes (a FAILED deployment's, a drained one's,
// a warm standby's, a deleted service's, an orphan's) first has the tail of
// its log kept in the store, bounded per deployment (store.SetKeepLogs).
// The engine's runtime is wrapped so that this holds for every removal,
// whoever asks for it.

// keepLogTimeout bounds the reading of a log about to be removed, so that a
// Docker engine that stalls cannot hold a removal up for long.
const keepLogTimeout = 10 * time.Second

// Halter is a Runtime that can stop a container and leave it in place: the
// log the engine then keeps holds the container's last words (its shutdown).
// Without it the log is kept just before the container is stopped.
type Halter interface {
	// Halt stops a container (within grace) without removing it; a missing
	// one is not an error.
	Halt(ctx context.Context, id string, grace time.Duration) error
}

// keepingRuntime is the Runtime the engine uses: the one it was given, whose
// Stop keeps the container's log first.
type keepingRuntime struct {
	Runtime
	e *Engine
}

func (k keepingRuntime) Stop(ctx context.Context, id string, grace time.Duration) error {
	k.e.keepLog(ctx, k.Runtime, id, grace)
	return k.Runtime.Stop(ctx, id, grace)
}

// keepLog keeps the tail of container id's log for the deployment it was
// made for, if it is one of this instance's. Failures are logged: they never
// stop a removal.
func (e *Engine) keepLog(ctx context.Context, rt Runtime, id string, grace time.Duration) {
	lines, size := e.store.KeepLogBounds()
	if lines <= 0 || id == "" {
		return
	}
	c, err := rt.Inspect(ctx, id)
	if err != nil {
		return // gone already, or Docker does not answer: the removal will say
	}
	dep, service := c.Labels[LabelDeployment], c.Labels[LabelService]
	if c.Labels[LabelOwner] != e.owner || dep == "" {
		return
	}
	if h, ok := rt.(Halter); ok && c.Running {
		if err := h.Halt(ctx, id, grace); err != nil {
			e.log.Debug("halt before keeping the log", "container", id, "err", err)
		}
	}
	lctx, cancel := context.WithTimeout(ctx, keepLogTimeout)
	defer cancel()
	w := &tailWriter{size: size}
	// One line more than kept, so that the store knows when older output went.
	if err := rt.Logs(lctx, id, LogOptions{Tail: lines + 1, Timestamps: true}, w); err != nil {
		e.log.Warn("read the log of a container before removing it", "deployment", dep, "container", id, "err", err)
		if len(w.buf) == 0 {
			return
		}
	}
	err = e.store.KeepLog(context.WithoutCancel(ctx), store.KeptLog{
		DeploymentID: dep, Service: service, ContainerID: id, RemovedAt: time.Now(), Text: w.buf,
	})
	if err != nil {
		e.log.Warn("keep the log of a removed container", "deployment", dep, "err", err)
	}
}

// tailWriter keeps the last size bytes written to it (and a little more).
type tailWriter struct {
	buf  []byte
	size int
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	if len(w.buf) > 2*w.size {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.size:]...)
	}
	return len(p), nil
}

var _ io.Writer = (*tailWriter)(nil)

// KeptLogs returns what was kept of deployment d's removed containers,
// oldest first (its own, and the warm standby's it adopted).
func (e *Engine) KeptLogs(ctx context.Context, d store.Deployment) ([]store.KeptLog, error) {
	return e.store.KeptLogs(ctx, d.ID, d.ContainerID)
}

// LogSource says where deployment d's logs come from: its container (nil),
// or the logs kept from its removed containers (kept non-empty); otherwise
// the error says why there are none (ErrNotFound) or that Docker does not
// answer (ErrUnavailable).
func (e *Engine) LogSource(ctx context.Context, d store.Deployment) (kept []store.KeptLog, err error) {
	err = e.HasContainer(ctx, d)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	kept, kerr := e.KeptLogs(ctx, d)
	if kerr != nil {
		return nil, kerr
	}
	if len(kept) == 0 {
		return nil, err
	}
	return kept, nil
}

// KeptLogIndex says when each deployment of service last kept a log.
func (e *Engine) KeptLogIndex(ctx context.Context, service string) (store.KeptLogIndex, error) {
	return e.store.KeptLogIndex(ctx, service)
}
