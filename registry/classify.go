package registry

import (
	"net"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/clank-dev/clank/store"
)

// Classify says where a deployment's image lives, and so how its
// availability is checked:
//
//   - local: the image never went to or came from a registry
//     (pushedOrPulled is false: the engine lists no repo digest for the ref's
//     repository), so only the local engine has it, whatever the ref names;
//   - registry: otherwise, when the ref's registry host is the Clank
//     registry's address (loopback spellings of the same port match:
//     127.0.0.1, localhost, [::1], and a registry listening on 0.0.0.0);
//   - external: otherwise (Docker Hub for a bare "nginx:1.27", GHCR, ...).
//
// A ref that does not parse is local: no registry can serve it.
func Classify(ref string, clankRegistryAddr string, pushedOrPulled bool) string {
	if !pushedOrPulled {
		return store.SourceLocal
	}
	r, err := name.ParseReference(stripDigest(ref))
	if err != nil {
		return store.SourceLocal
	}
	if IsClankRegistry(r.Context().RegistryStr(), clankRegistryAddr) {
		return store.SourceRegistry
	}
	return store.SourceExternal
}

// IsClankRegistry reports whether host, the "host:port" of an image
// reference, is the Clank registry listening on clankAddr ("" when it is
// off): the same address, or a loopback spelling of the same port
// (127.0.0.1, localhost, [::1]; any of them for a registry listening on
// 0.0.0.0). Every part of Clank asks here.
func IsClankRegistry(host, clankAddr string) bool {
	return clankAddr != "" && sameRegistry(host, clankAddr)
}

// PushHost is the "host:port" under which the local Docker engine reaches
// the Clank registry listening on addr ("" when it is off): addr itself, or
// loopback when it listens on every interface, since the engine pushes to
// loopback over plain HTTP with no configuration.
func PushHost(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

// sameRegistry compares two "host:port" addresses, treating every loopback or
// unspecified host as one.
func sameRegistry(a, b string) bool {
	if strings.EqualFold(a, b) {
		return true
	}
	ah, ap, err1 := net.SplitHostPort(a)
	bh, bp, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || ap != bp {
		return false
	}
	return isLocalHost(ah) && isLocalHost(bh)
}

func isLocalHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}

// isLoopbackHost reports whether a registry ("host" or "host:port") is on
// loopback, where plain HTTP is the norm (the Docker engine agrees).
func isLoopbackHost(registry string) bool {
	h := registry
	if host, _, err := net.SplitHostPort(registry); err == nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
