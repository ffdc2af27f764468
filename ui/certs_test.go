package ui_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/daemon"
	"github.com/clank-dev/clank/internal/testacme"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// TestDetailShowsCertificates: on a daemon with HTTPS on (its certificates from an
// in-process Pebble that validates against the daemon's listeners), a deployment's
// detail says, for each of its domains that has a certificate, its state, expiry and
// issuer, or why it could not be obtained, and follows a change live.
func TestDetailShowsCertificates(t *testing.T) {
	ca := testacme.Start(t, testacme.Options{})
	w := realdaemon.NewWith(t, func(c *daemon.Config) {
		c.HTTPSAddr, c.ACMECA, c.ACMERoots, c.CertRetry = "127.0.0.1:0", ca.Directory(), ca.Roots(), 200*time.Millisecond
	})
	port := func(addr string) int {
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		return n
	}
	ca.Validate(port(w.Daemon.RouterAddr()), port(w.Daemon.HTTPSAddr()))
	const domain, down = "web.clank-test.example", "down.clank-test.example"
	image := w.Image("v1")
	w.CreateService("web", image, func(s *api.ServiceSpec) { s.Domains = []string{domain, "web.localhost"} })
	w.Deploy("web", image)
	var cert api.Certificate
	for deadline := time.Now().Add(realdaemon.DeployWithin); cert.Status != "valid"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no certificate for %s: %+v", domain, cert)
		}
		if list, err := w.Client.Certificates(context.Background()); err == nil && len(list) == 1 {
			cert = list[0]
		}
	}

	s := open(t, w.Backend(), ui.RoleAdmin, 160, 48)
	s.press("enter")
	s.waitDeployments("web")
	s.press("enter")
	s.waitFor("web #1", "https", domain+" valid until "+cert.NotAfter.Local().Format("2006-01-02"), cert.Issuer)
	s.never("web.localhost valid") // a localhost name never has a certificate

	// A deployment whose new domain cannot get one yet: the detail says why, and
	// shows it valid once it comes, with no key pressed.
	ca.SetMode(testacme.Broken)
	w.Update("web", api.ServiceSpec{Domains: []string{domain, down}})
	w.Deploy("web", image)
	s.press("esc")
	s.waitFor("#2")
	s.press("k", "enter")                           // the newest, #2
	s.waitFor("web #2", down+" failed", "HTTP 500") // why, as the CA answered
	ca.SetMode(testacme.Up)
	s.waitFor(down + " valid until")
}
