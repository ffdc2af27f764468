// Package certs gives the edge its TLS certificates: one per domain a service
// serves, obtained from an ACME CA (Let's Encrypt by default) through
// github.com/caddyserver/certmagic, kept under the data dir and renewed in
// the background.
//
// The engine tells a Manager which domains each service needs certificates
// for (engine.Certificates) and never waits for one: a certificate is
// obtained in the background, retried with backoff, and its failures are
// reported as events and in List, while the service answers on plain HTTP.
// The HTTP listener answers HTTP-01 challenges and redirects to HTTPS through
// HTTPHandler; the HTTPS listener takes TLSConfig, which serves the
// certificates and answers TLS-ALPN-01 challenges.
package certs
