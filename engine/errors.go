package engine

import "errors"

// Refusals and bad input. Callers test with errors.Is; the daemon maps them to
// API codes and exit codes in one place.
var (
	// ErrInvalid: the request itself is wrong (a bad name, port, env key, ...).
	ErrInvalid = errors.New("invalid")
	// ErrNotFound: no such service or deployment.
	ErrNotFound = errors.New("not found")
	// ErrRefused: the request is well formed but cannot be done now.
	ErrRefused = errors.New("refused")
	// ErrInProgress: another deployment of the service is in progress.
	ErrInProgress = errors.New("another deployment is in progress")
	// ErrUnavailable: the Docker engine (or another part) does not answer.
	ErrUnavailable = errors.New("unavailable")
)

// refusal is a refused request whose message is the whole reason, and which
// matches ErrRefused (and its cause, if any) with errors.Is.
type refusal struct {
	msg   string
	cause error
}

func (r *refusal) Error() string { return r.msg }

func (r *refusal) Is(target error) bool { return target == ErrRefused }

func (r *refusal) Unwrap() error { return r.cause }

func refuse(cause error, msg string) error { return &refusal{msg: msg, cause: cause} }

// invalid is bad input; it matches ErrInvalid.
type invalid struct{ msg string }

func (e *invalid) Error() string { return e.msg }

func (e *invalid) Is(target error) bool { return target == ErrInvalid }

// notFound is an unknown service or deployment; it matches ErrNotFound.
type notFound struct{ msg string }

func (e *notFound) Error() string { return e.msg }

func (e *notFound) Is(target error) bool { return target == ErrNotFound }
