package ssh

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"charm.land/ssh"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
)

// sessionBackend is what one session's dashboard talks to: the server's
// Backend, with every call made as the session (api.WithCaller), so that the
// daemon checks the session's role itself (daemon/roles.go) whatever the
// screen does. The role is read again for every call: a key demoted or
// removed in authorized_keys while its session is open acts as a viewer from
// its next call.
//
// Every method is written out, not embedded: a method added to ui.Backend
// does not compile here until it carries the caller too.
type sessionBackend struct {
	b      ui.Backend
	caller func() api.Caller
	events *eventFeed // shared by the sessions: see eventFeed
	stats  *statsShare
}

var _ ui.Backend = sessionBackend{}

// sessionBackend gives a session's dashboard a backend that acts as id, the
// session of key from remote.
func (s *Server) sessionBackend(id identity, key ssh.PublicKey, remote net.Addr) sessionBackend {
	return sessionBackend{b: s.opts.Backend, events: s.events, stats: s.stats, caller: func() api.Caller {
		role := ui.RoleViewer
		if g, ok := s.keys.lookup(key, remote, time.Now()); ok {
			role = g.role
		}
		return api.Caller{Actor: id.actor(), Role: string(role)}
	}}
}

func (sb sessionBackend) as(ctx context.Context) context.Context {
	return api.WithCaller(ctx, sb.caller())
}

func (sb sessionBackend) Status(ctx context.Context) (api.Status, error) {
	return sb.b.Status(sb.as(ctx))
}

func (sb sessionBackend) Services(ctx context.Context) ([]api.Service, error) {
	return sb.b.Services(sb.as(ctx))
}

func (sb sessionBackend) Deployments(ctx context.Context, service string, limit, beforeNumber int) ([]api.Deployment, error) {
	return sb.b.Deployments(sb.as(ctx), service, limit, beforeNumber)
}

func (sb sessionBackend) Deployment(ctx context.Context, id string) (api.Deployment, []api.Event, error) {
	return sb.b.Deployment(sb.as(ctx), id)
}

func (sb sessionBackend) Plan(ctx context.Context, req api.ActionRequest) (api.Plan, error) {
	return sb.b.Plan(sb.as(ctx), req)
}

func (sb sessionBackend) Act(ctx context.Context, req api.ActionRequest) (api.Deployment, error) {
	return sb.b.Act(sb.as(ctx), req)
}

// Subscribe joins the sessions' shared event stream (eventFeed): the one
// call not made as the session, since every role sees the same events.
func (sb sessionBackend) Subscribe(ctx context.Context) (<-chan api.Event, error) {
	return sb.events.subscribe(ctx)
}

func (sb sessionBackend) Logs(ctx context.Context, service, deploymentID string, opts api.LogOptions, w io.Writer) error {
	return sb.b.Logs(sb.as(ctx), service, deploymentID, opts, w)
}

func (sb sessionBackend) Unfreeze(ctx context.Context, service, by string) (api.Unfrozen, error) {
	return sb.b.Unfreeze(sb.as(ctx), service, by)
}

func (sb sessionBackend) DeleteService(ctx context.Context, name string, purge bool) (api.ServiceDeletion, error) {
	return sb.b.DeleteService(sb.as(ctx), name, purge)
}

func (sb sessionBackend) Certificates(ctx context.Context) ([]api.Certificate, error) {
	return sb.b.Certificates(sb.as(ctx))
}

func (sb sessionBackend) Traffic(ctx context.Context, service string) ([]api.Traffic, error) {
	return sb.b.Traffic(sb.as(ctx), service)
}

func (sb sessionBackend) RecheckImages(ctx context.Context, service string) (int, error) {
	return sb.b.RecheckImages(sb.as(ctx), service)
}

// Stats is the sessions' shared read of the daemon's stats: every role sees
// the same, and the daemon's sampler refreshes them every few seconds, so
// one read serves the sessions that ask within statsShareTTL (50 sessions
// polling cost the daemon one call, not 50).
func (sb sessionBackend) Stats(ctx context.Context) ([]api.ServiceStats, error) {
	return sb.stats.get(func() ([]api.ServiceStats, error) { return sb.b.Stats(sb.as(ctx)) })
}

// statsShareTTL is how long one read of the stats serves: under the
// dashboard's poll (2.5 s), so each poll sees a fresh sample.
const statsShareTTL = time.Second

// statsShare is the last read of the stats; a read that finds it older than
// statsShareTTL reads again, the others that ask meanwhile waiting for it.
type statsShare struct {
	mu    sync.Mutex
	at    time.Time
	stats []api.ServiceStats // read only: each dashboard copies what it keeps
	reads atomic.Int64       // calls to the daemon (tests)
}

func (s *statsShare) get(read func() ([]api.ServiceStats, error)) ([]api.ServiceStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.at.IsZero() && time.Since(s.at) < statsShareTTL {
		return s.stats, nil
	}
	s.reads.Add(1)
	stats, err := read()
	if err != nil {
		return nil, err
	}
	s.at, s.stats = time.Now(), stats
	return stats, nil
}
