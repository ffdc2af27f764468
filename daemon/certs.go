package daemon

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/certs"
)

// startCerts listens on the HTTPS address and makes the certificate manager, which
// answers ACME challenges on the edge's listeners and keeps its certificates in
// <data-dir>/certs.
func (d *Daemon) startCerts() error {
	var err error
	if d.tlsLn, err = net.Listen("tcp", d.cfg.HTTPSAddr); err != nil {
		return fmt.Errorf("edge router (HTTPS) on %s: %w", d.cfg.HTTPSAddr, err)
	}
	d.certs, err = certs.New(certs.Options{
		Dir:          filepath.Join(d.cfg.DataDir, "certs"),
		CA:           d.cfg.ACMECA,
		Email:        d.cfg.ACMEEmail,
		TrustedRoots: d.cfg.ACMERoots,
		HTTPAddr:     d.RouterAddr(),
		HTTPSAddr:    d.HTTPSAddr(),
		RetryMin:     d.cfg.CertRetry,
		Notify:       d.certEvent,
		Logger:       d.log.With("part", "certs"),
	})
	return err
}

// ACMECA is the ACME directory certificates come from.
func (d *Daemon) ACMECA() string {
	if d.cfg.ACMECA == "" {
		return certs.DefaultCA
	}
	return d.cfg.ACMECA
}

// certEvent streams a certificate's change to every subscriber, as events of the
// service that serves the domain.
func (d *Daemon) certEvent(e certs.Event) {
	ev := api.Event{Type: api.EventCertificate, Service: e.Service, Message: e.Message, At: time.Now()}
	d.hub.Publish(ev, func(e *api.Event, seq int64) { e.Seq = seq })
}

// Certificates lists every domain's certificate (none when HTTPS is off).
func (d *Daemon) Certificates() []api.Certificate {
	out := []api.Certificate{}
	if d.certs == nil {
		return out
	}
	for _, s := range d.certs.List() {
		c := api.Certificate{Domain: s.Domain, Service: s.Service, Status: s.State, Issuer: s.Issuer, LastError: s.LastError}
		if !s.NotAfter.IsZero() {
			t := s.NotAfter.UTC()
			c.NotAfter = &t
		}
		out = append(out, c)
	}
	return out
}

func (d *Daemon) listCertificates(*http.Request) (int, any, error) {
	return http.StatusOK, d.Certificates(), nil
}
