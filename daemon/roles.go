package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"

	"github.com/clank-dev/clank/api"
)

// Roles in the daemon (docs/architecture.md, "Invariants"): every API call is
// made as someone, and the daemon, not a screen, decides what they may do.
//
// Who a call is made as. The socket is 0600 in a 0700 directory, so only
// the daemon's own user and root can connect. The kernel tells the daemon
// the peer's uid (SO_PEERCRED), which the peer cannot choose: the daemon's
// uid and root are admins, acting as "<user> (cli)"; any other uid (possible
// only if someone widened the socket's mode) is a viewer. Where the kernel
// cannot say (not Linux), the socket's mode is the only gate and every peer
// is taken as the owner.
//
// On behalf of someone else. The SSH dashboard runs inside this process and
// talks to this API over the socket, so its calls come from an admin peer;
// each session's calls carry the session's identity and role in the
// Clank-Actor and Clank-Role headers (api.WithCaller). The daemon honours
// those headers only from an admin peer, and refuses them from anyone else.
// That is safe because an admin peer may already do anything (it could as
// well write the store): naming who acts and lowering what they may do gives
// it nothing it did not have. A viewer's session cannot raise itself,
// because its headers are written by the SSH server, not by the viewer.
//
// What a caller may do. A viewer may look: every GET but the ones that show
// secrets (env values, the registry's credential), and the plan of an action
// (a POST that only reads). Everything else needs an admin, by default: an
// endpoint added later is refused to viewers unless it is listed below as a
// read.

// ErrForbidden is a call its caller's role may not make (HTTP 403,
// "forbidden", exit 1).
var ErrForbidden = errors.New("forbidden")

// forbidden says who was refused what.
type forbidden struct {
	who  api.Caller
	what string
}

func (e *forbidden) Error() string {
	return fmt.Sprintf("forbidden: %s is a %s, and only an admin may %s", e.who.Actor, e.who.Role, e.what)
}

func (e *forbidden) Is(target error) bool { return target == ErrForbidden }

// viewerPosts are the routes that are not GET but only read.
var viewerPosts = map[string]bool{
	"POST /v1/plan": true,
	// A fresher check of the badges a viewer looks at: it changes nothing
	// but how recent the availability is.
	"POST /v1/services/{name}/images/check": true,
}

// secretReads are the GET routes that show secrets.
var secretReads = map[string]bool{
	"GET /v1/registry/credential": true,
}

// verbs say what a route does, for a refusal; a route missing here is
// refused all the same, in general words.
var verbs = map[string]string{
	"POST /v1/services":                    "create services",
	"PATCH /v1/services/{name}":            "change services",
	"DELETE /v1/services/{name}":           "delete services",
	"POST /v1/services/{name}/unfreeze":    "unfreeze pushes",
	"POST /v1/services/{name}/scale":       "scale services",
	"POST /v1/actions":                     "deploy, redeploy or roll back",
	"POST /v1/prune":                       "prune images",
	"POST /v1/registry/gc":                 "collect the registry's garbage",
	"POST /v1/services/{name}/build":       "build images",
	"POST /v1/services/{name}/git/receive": "push to deploy",
	"GET /v1/registry/credential":          "read the registry's credential",
}

// adminOnly says what r (routed to pattern) would do that only an admin may,
// or "" if a viewer may make it.
func adminOnly(r *http.Request, pattern string) string {
	read := r.Method == http.MethodGet || r.Method == http.MethodHead
	switch {
	case pattern == "":
		return "" // no such route: the mux answers 404 or 405
	case read && showEnv(r):
		return "see env values"
	case read && !secretReads[pattern], viewerPosts[pattern]:
		return ""
	}
	if v := verbs[pattern]; v != "" {
		return v
	}
	return "make changes (" + pattern + ")"
}

// withRoles finds out who every call is made as, refuses what their role
// may not do, and hands the rest to mux with the caller in the context.
func (d *Daemon) withRoles(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := callerOf(r)
		if err != nil {
			writeErr(w, err)
			return
		}
		_, pattern := mux.Handler(r)
		if what := adminOnly(r, pattern); what != "" && c.Role != api.RoleAdmin {
			d.log.Warn("refused a viewer's call", "caller", c.Actor, "role", c.Role, "route", pattern)
			writeErr(w, &forbidden{who: c, what: what})
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

type (
	peerKey   struct{} // the socket peer, set per connection
	callerKey struct{} // who a request acts as, set by withRoles
)

// peerContext is the API server's ConnContext: it records the connection's
// peer once, from the kernel.
func peerContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, peerOf(c))
}

// peerOf is the caller a socket connection's peer is.
func peerOf(c net.Conn) api.Caller {
	uid, ok := peerUID(c)
	if !ok {
		return api.Caller{Actor: userName(os.Getuid()) + " (cli)", Role: api.RoleAdmin}
	}
	role := api.RoleViewer
	if uid == os.Getuid() || uid == 0 {
		role = api.RoleAdmin
	}
	return api.Caller{Actor: userName(uid) + " (cli)", Role: role}
}

func userName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return u.Username
	}
	return "uid " + strconv.Itoa(uid)
}

// callerOf is who r is made as: its peer, or whom an admin peer names in the
// on-behalf headers.
func callerOf(r *http.Request) (api.Caller, error) {
	peer, ok := r.Context().Value(peerKey{}).(api.Caller)
	if !ok {
		// Served without peerContext (not through the socket): nobody.
		peer = api.Caller{Actor: "unknown", Role: api.RoleViewer}
	}
	actor, role := r.Header.Get(api.HeaderActor), r.Header.Get(api.HeaderRole)
	if actor == "" && role == "" {
		return peer, nil
	}
	if peer.Role != api.RoleAdmin {
		return peer, &forbidden{who: peer, what: "act on behalf of someone else"}
	}
	name, err := url.QueryUnescape(actor)
	if err != nil || name == "" || (role != api.RoleAdmin && role != api.RoleViewer) {
		return peer, badRequest("bad %s/%s headers: want an actor and admin or viewer", api.HeaderActor, api.HeaderRole)
	}
	return api.Caller{Actor: name, Role: role}, nil
}

// caller is who r acts as (set by withRoles).
func caller(r *http.Request) api.Caller {
	c, _ := r.Context().Value(callerKey{}).(api.Caller)
	return c
}
