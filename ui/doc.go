// Package ui is Clank's dashboard: a Bubble Tea program that shows services and
// their deployments live, opens a deployment's snapshot, events and logs, and
// rolls back, redeploys or deploys through a confirmation modal.
//
// The same program runs in a local terminal (Run) and once per SSH session
// (package ui/ssh builds it with NewProgram). It talks to Clank only through
// Backend, so it works the same against the engine in-process or the daemon
// over its socket. Statuses change on screen from the Backend's event stream,
// never from polling; a service's deployments are paged in a bounded window so
// a long history costs no more to show than a short one.
package ui
