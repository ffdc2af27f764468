//go:build !unix

package connpeek

import "syscall"

// Peek cannot look at a socket here.
func Peek(raw syscall.RawConn) State { return Uncertain }
