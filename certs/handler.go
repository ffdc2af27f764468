package certs

import (
	"crypto/tls"
	"net/http"
	"slices"
	"strings"

	"github.com/clank-dev/clank/engine/edge"
)

// challengePath is where ACME HTTP-01 challenges are asked for: never redirected.
const challengePath = "/.well-known/acme-challenge/"

// HTTPHandler is next as the edge's plain-HTTP listener serves it: ACME HTTP-01
// challenges are answered, a request for a domain that has a certificate and whose
// service redirects gets a 308 to the same URL on HTTPS, and the rest goes to next.
// With no certificate served it costs one atomic load per request.
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	redirect := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if set := *m.redirects.Load(); len(set) > 0 && !strings.HasPrefix(r.URL.Path, challengePath) {
			if host := edge.CanonicalHost(r.Host); set[host] {
				target := "https://" + host
				if m.httpsPort != "" {
					target += ":" + m.httpsPort
				}
				w.Header().Set("Location", target+r.URL.RequestURI())
				w.WriteHeader(http.StatusPermanentRedirect)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
	return m.issuer.HTTPChallengeHandler(redirect)
}

// TLSConfig is the HTTPS listener's configuration: the managed certificates by SNI,
// TLS-ALPN-01 challenges, and HTTP/2 or HTTP/1.1. A handshake for a name with no
// certificate fails.
func (m *Manager) TLSConfig() *tls.Config {
	c := m.cfg.TLSConfig()
	c.NextProtos = slices.Concat([]string{"h2", "http/1.1"}, c.NextProtos)
	c.MinVersion = tls.VersionTLS12
	return c
}
