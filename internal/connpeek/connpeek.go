// Package connpeek looks at an idle connection's socket, without blocking or
// consuming anything, for bytes its peer sent unasked. The answer to a
// request must be the first byte read after it was written: a byte already
// waiting would be taken for it. The edge router checks a pooled backend
// connection with it before reuse, the supervision its kept probe
// connections.
package connpeek

// State is what Peek finds on an idle connection.
type State int

const (
	Quiet     State = iota // nothing to read: safe to send the next request on
	Bytes                  // bytes that answer no request
	Closed                 // the peer closed it, or it failed
	Uncertain              // no socket to look at
)
