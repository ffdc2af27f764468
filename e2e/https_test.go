package e2e

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/internal/testacme"
	"github.com/clank-dev/clank/internal/testdocker"
)

var httpsRe = regexp.MustCompile(`edge router on https://(127\.0\.0\.1:\d+)`)

// TestServeWithHTTPS drives `clank serve --https-addr --acme-ca --acme-email` with an
// in-process Pebble as the CA (trusted through SSL_CERT_FILE, as an operator's
// private CA would be), validating against the daemon's own listeners: the README's
// HTTPS section, command by command.
func TestServeWithHTTPS(t *testing.T) {
	rt := testdocker.Require(t)
	ca := testacme.Start(t, testacme.Options{})
	roots := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(roots, ca.RootsPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemonWith(t, "", "127.0.0.1:0", []string{"SSL_CERT_FILE=" + roots},
		"--https-addr", "127.0.0.1:0", "--acme-ca", ca.Directory(), "--acme-email", "ops@clank-test.example")
	var httpsAddr string
	waitFor(t, 10*time.Second, func() bool {
		m := httpsRe.FindStringSubmatch(d.log.String())
		if m != nil {
			httpsAddr = m[1]
		}
		return m != nil
	})
	portOf := func(addr string) int {
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		return n
	}
	ca.Validate(portOf(d.router), portOf(httpsAddr))

	const domain = "web.clank-test.example"
	image := testdocker.SampleImage(t, rt, "v1")
	d.ok("service", "create", "web", "--image", image, "--port", strconv.Itoa(testdocker.SampleAppPort),
		"--domain", domain, "--domain", "web.localhost", "--health-path", "/healthz")
	d.ok("deploy", "--service", "web")

	var certs []map[string]any
	waitFor(t, 60*time.Second, func() bool {
		if err := json.Unmarshal([]byte(d.ok("certs", "-o", "json")), &certs); err != nil {
			t.Fatal(err)
		}
		return len(certs) == 1 && certs[0]["status"] == "valid"
	})
	for _, key := range []string{"domain", "service", "status", "issuer", "not_after", "last_error"} {
		if _, ok := certs[0][key]; !ok {
			t.Errorf("clank certs -o json: no %q in %v", key, certs[0])
		}
	}
	if certs[0]["domain"] != domain || certs[0]["service"] != "web" || certs[0]["issuer"] == "" {
		t.Fatalf("clank certs -o json: %v", certs[0])
	}
	if table := d.ok("certs"); !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(domain) + `\s+web\s+valid\s`).MatchString(table) {
		t.Fatalf("clank certs:\n%s", table)
	}
	if _, body, err := ca.GetHTTPS(httpsAddr, domain, "/"); err != nil || body != "hello from v1" {
		t.Fatalf("HTTPS through clank serve: %q %v\n%s", body, err, d.log)
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+d.router+"/page?x=1", nil)
	req.Host = domain
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if want := "https://" + domain + ":" + strconv.Itoa(portOf(httpsAddr)) + "/page?x=1"; res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
		t.Fatalf("plain HTTP for %s: %d %q, want 308 to %s", domain, res.StatusCode, res.Header.Get("Location"), want)
	}
	d.ok("service", "update", "web", "--https-redirect=false")
	var svcs []map[string]any
	if err := json.Unmarshal([]byte(d.ok("services", "-o", "json")), &svcs); err != nil || len(svcs) != 1 || svcs[0]["https_redirect"] != false {
		t.Fatalf("services -o json after --https-redirect=false: %v %v", svcs, err)
	}
	if body := d.mustGet(domain, "/"); body != "hello from v1" {
		t.Fatalf("plain HTTP with the redirect off: %q", body)
	}
	if !strings.Contains(d.log.String(), "https://"+httpsAddr) {
		t.Fatalf("clank serve does not say where HTTPS listens:\n%s", d.log)
	}
}
