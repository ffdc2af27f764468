package testnet

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"
)

func TestRefusedAddrRefusesAndIsNotTaken(t *testing.T) {
	addr := RefusedAddr(t)
	for range 3 {
		start := time.Now()
		_, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial %s: %v, want connection refused", addr, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("refused after %s, want at once", took)
		}
	}
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Fatalf("another listener took %s while it was held", addr)
	}
}
