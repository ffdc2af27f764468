//go:build unix

package edge

import "syscall"

// peek looks, without blocking or consuming anything, whether the backend has sent
// anything on the idle connection c. The answer to a request must be the first byte
// read after it was written; a byte already waiting would be taken for it.
func (c *backendConn) peek() connState {
	if c.br.Buffered() > 0 {
		return connBytes
	}
	if c.raw == nil {
		return connUncertain
	}
	state := connUncertain
	var b [1]byte
	err := c.raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n > 0:
			state = connBytes
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			state = connQuiet
		default: // 0 bytes: end of stream; or a socket error
			state = connClosed
		}
		return true
	})
	if err != nil {
		return connClosed
	}
	return state
}
