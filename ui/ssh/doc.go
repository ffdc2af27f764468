// Package ssh serves the dashboard over SSH with wish: one Bubble Tea program
// per session, public-key authentication against <data-dir>/authorized_keys
// (read again when it changes), and a role per key: role="admin" may deploy,
// redeploy and roll back, anything else only looks.
//
// Identity and role come only from the key that completed authentication.
// golang.org/x/crypto calls the public-key callback for every key a client
// merely offers, before any signature (CVE-2024-45337, the soft-serve
// advisory GHSA-pchf-49fh-w34r), so the callback decides nothing by side
// effect: it writes the key's role and fingerprint into the Permissions it
// returns, x/crypto keeps the Permissions of the key that signed, and
// sessions read them from there.
//
// The screen's role only hides what a viewer cannot do; the daemon decides.
// Every call a session's dashboard makes carries the session's identity and
// the role its key has at that moment (session.go, api.WithCaller), and the
// daemon refuses a viewer's write (daemon/roles.go). The event stream is the
// exception: it is the same for every role, so the sessions share one
// (events.go).
package ssh
