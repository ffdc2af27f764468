// Package store keeps Clank's state in one SQLite file: services and the
// domains they own, deployments (immutable snapshots of a service's config
// plus the state of their run), lifecycle events, image availability and a
// few key/value settings.
//
// The file runs in WAL mode. Writes go through one connection and begin with
// BEGIN IMMEDIATE, so writers queue instead of failing with SQLITE_BUSY (a
// second process on the same file waits on the busy timeout); reads use a
// separate read-only pool and never wait on writers. The schema is a list of
// embedded, numbered .sql migrations applied in order at Open.
//
// Env values in a Config are secrets: the store never logs and never puts a
// Config's content in an error message.
package store
