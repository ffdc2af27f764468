// Package testnet gives tests loopback addresses they can rely on while they
// run: never "a port that was free a moment ago", which another test (or
// another helper's) may take before it is used.
package testnet

import (
	"fmt"
	"syscall"
	"testing"
)

// RefusedAddr is a 127.0.0.1 address whose port this test holds bound but not
// listening until it ends: a connection to it is refused at once, and no one
// else can listen on it meanwhile (a closed listener's port could be anyone's).
func RefusedAddr(tb testing.TB) string {
	tb.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("testnet: socket: %v", err)
	}
	tb.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatalf("testnet: bind 127.0.0.1:0: %v", err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		tb.Fatalf("testnet: getsockname: %v", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok || in4.Port == 0 {
		tb.Fatalf("testnet: bound to %v", sa)
	}
	return fmt.Sprintf("127.0.0.1:%d", in4.Port)
}
