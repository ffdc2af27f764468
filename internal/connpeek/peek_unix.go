//go:build unix

package connpeek

import "syscall"

// Peek looks at raw's socket with a non-blocking MSG_PEEK; raw nil is
// Uncertain.
func Peek(raw syscall.RawConn) State {
	if raw == nil {
		return Uncertain
	}
	state := Uncertain
	var b [1]byte
	err := raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case n > 0:
			state = Bytes
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
			state = Quiet
		default: // 0 bytes: end of stream; or a socket error
			state = Closed
		}
		return true
	})
	if err != nil {
		return Closed
	}
	return state
}
