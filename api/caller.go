package api

import (
	"context"
	"net/http"
	"net/url"
)

// Roles (README.md, "Who may do what"): an admin may change things, a viewer only
// looks. The daemon decides every call's role; see daemon/roles.go.
const (
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

// Caller is who an API call is made as: Actor is recorded as triggered_by
// ("alice (SHA256:…)" for an SSH key, "alice (cli)" for the socket's owner).
type Caller struct {
	Actor string `json:"actor"`
	Role  string `json:"role"`
}

// The headers a call made on behalf of someone carries. The daemon honours
// them only from the socket's owner (or root), who may already do anything:
// they can name who acts and lower what it may do, never raise it.
const (
	HeaderActor = "Clank-Actor" // the Actor, URL-query-escaped
	HeaderRole  = "Clank-Role"
)

type callerKey struct{}

// WithCaller makes the Client's calls with ctx act on behalf of c (the SSH
// dashboard gives each session's calls its key's identity and role).
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerOf is the caller ctx acts on behalf of, if WithCaller named one.
func CallerOf(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// setCaller puts the caller ctx names, if any, on req.
func setCaller(req *http.Request) {
	if c, ok := CallerOf(req.Context()); ok {
		req.Header.Set(HeaderActor, url.QueryEscape(c.Actor))
		req.Header.Set(HeaderRole, c.Role)
	}
}
