package ssh

import (
	"net"
	"sync"

	"charm.land/ssh"
)

// connSet counts the server's connections from accept to close, so that
// Shutdown can wait for them without charm.land/ssh's own Shutdown. That one
// waits on a WaitGroup that a connection joins only after its handshake: a
// handshake that ends while Shutdown waits adds to the group from zero
// during the Wait, which the race detector reports (and which may let
// Shutdown return with that connection open). TestShutdownWhileConnecting
// shows it. Here a connection joins when it is accepted, under the same lock
// that Shutdown takes to stop admitting, so no connection joins after.
type connSet struct {
	mu      sync.Mutex
	open    map[*trackedConn]struct{}
	closing bool
	empty   chan struct{} // closed once closing and no connection is left
}

// admit is the server's ConnCallback: it counts conn, or refuses it (nil)
// once the server is closing.
func (cs *connSet) admit(_ ssh.Context, conn net.Conn) net.Conn {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closing {
		return nil // the library closes it
	}
	if cs.open == nil {
		cs.open = map[*trackedConn]struct{}{}
	}
	tc := &trackedConn{Conn: conn, set: cs}
	cs.open[tc] = struct{}{}
	return tc
}

// close stops admitting connections; the channel closes once every
// connection admitted before has closed.
func (cs *connSet) close() <-chan struct{} {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if !cs.closing {
		cs.closing = true
		cs.empty = make(chan struct{})
		if len(cs.open) == 0 {
			close(cs.empty)
		}
	}
	return cs.empty
}

// closeAll closes every connection still open, handshakes included.
func (cs *connSet) closeAll() {
	cs.mu.Lock()
	open := make([]*trackedConn, 0, len(cs.open))
	for tc := range cs.open {
		open = append(open, tc)
	}
	cs.mu.Unlock()
	for _, tc := range open {
		_ = tc.Close()
	}
}

func (cs *connSet) remove(tc *trackedConn) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.open, tc)
	if cs.closing && len(cs.open) == 0 {
		select {
		case <-cs.empty:
		default:
			close(cs.empty)
		}
	}
}

// trackedConn leaves its set when it closes.
type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (tc *trackedConn) Close() error {
	tc.once.Do(func() { tc.set.remove(tc) })
	return tc.Conn.Close()
}
