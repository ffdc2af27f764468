package registry

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"golang.org/x/crypto/bcrypt"
)

// status is the HTTP status of a go-containerregistry error (0 if none).
func status(err error) int {
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.StatusCode
	}
	return 0
}

// request sends method path to c with the Authorization header auth ("" for
// none) and returns the answer, its body read.
func (c *clank) request(t *testing.T, method, path, auth string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+c.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func basic(user, password string) string {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}

// token asks c's token endpoint for a token with the Authorization header
// auth; it returns the status and the token.
func (c *clank) token(t *testing.T, auth string) (int, string) {
	t.Helper()
	resp, body := c.request(t, http.MethodGet, TokenPath+"?service=clank-registry&scope=repository:web:pull,push", auth)
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &tok); err != nil || tok.Token == "" || tok.Token != tok.AccessToken || tok.ExpiresIn <= 0 {
			t.Fatalf("token answer %q: %v", body, err)
		}
	}
	return resp.StatusCode, tok.Token
}

// Pushes and deletes need the credential; pulls from loopback do not. The
// client is go-containerregistry, which follows the Bearer challenge to the
// token endpoint as Docker does.
func TestPushAndDeleteNeedCredentials(t *testing.T) {
	c := startClank(t)
	dockerConfig(t, nil)
	ref, err := name.ParseReference(c.addr+"/web:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cred := c.srv.Credential()
	wrong := remote.WithAuth(&authn.Basic{Username: cred.Username, Password: cred.Password + "x"})
	stranger := remote.WithAuth(&authn.Basic{Username: "mallory", Password: cred.Password})

	for name, opts := range map[string][]remote.Option{
		"anonymous": nil, "wrong password": {wrong}, "unknown user": {stranger},
	} {
		if err := remote.Write(ref, img, opts...); status(err) != http.StatusUnauthorized {
			t.Errorf("push, %s: err = %v; want 401", name, err)
		}
	}
	if resp, _ := c.request(t, http.MethodGet, "/v2/web/manifests/v1", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("after refused pushes, GET web:v1 = %s; want 404", resp.Status)
	}

	if err := remote.Write(ref, img, c.auth()); err != nil {
		t.Fatalf("push with the credential: %v", err)
	}
	want, _ := img.Digest()
	// Anonymous pulls: through the token flow, and with no token at all.
	pulled, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("anonymous pull: %v", err)
	}
	if got, _ := pulled.Digest(); got != want {
		t.Fatalf("anonymous pull got %s, want %s", got, want)
	}
	if resp, _ := c.request(t, http.MethodGet, "/v2/web/manifests/v1", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET web:v1 with no token: %s; want 200", resp.Status)
	}

	byDigest := c.addr + "/web@" + want.String()
	dref, err := name.ParseReference(byDigest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	for name, opts := range map[string][]remote.Option{"anonymous": nil, "wrong password": {wrong}} {
		if err := remote.Delete(dref, opts...); status(err) != http.StatusUnauthorized {
			t.Errorf("delete, %s: err = %v; want 401", name, err)
		}
	}
	resp, _ := c.request(t, http.MethodDelete, "/v2/web/manifests/"+want.String(), "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("plain DELETE with no credentials: %s; want 401", resp.Status)
	}
	if _, err := remote.Head(dref); err != nil {
		t.Fatalf("the manifest after refused deletes: %v", err)
	}
	if err := remote.Delete(dref, c.auth()); err != nil {
		t.Fatalf("delete with the credential: %v", err)
	}
	if _, err := remote.Head(dref); status(err) != http.StatusNotFound {
		t.Fatalf("the manifest after its delete: %v; want 404", err)
	}
}

// The challenges and the token endpoint, as a Docker client sees them.
func TestChallengeAndTokens(t *testing.T) {
	c := startClank(t)
	cred := c.srv.Credential()
	realm := `Bearer realm="http://` + c.addr + `/auth/token",service="clank-registry"`

	resp, body := c.request(t, http.MethodPost, "/v2/web/blobs/uploads/", "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("anonymous upload: %s", resp.Status)
	}
	if got, want := resp.Header.Get("WWW-Authenticate"), realm+`,scope="repository:web:pull,push"`; got != want {
		t.Errorf("anonymous upload challenge %q, want %q", got, want)
	}
	if !strings.Contains(body, `"code":"UNAUTHORIZED"`) {
		t.Errorf("anonymous upload body %q: want distribution's UNAUTHORIZED error", body)
	}
	// The base route is where clients learn the realm: challenged even on
	// loopback, or a Docker client would never ask for a token.
	resp, _ = c.request(t, http.MethodGet, "/v2/", "")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != realm {
		t.Errorf("GET /v2/ with nothing: %s %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}

	// An anonymous token pulls, and may not push.
	code, anon := c.token(t, "")
	if code != http.StatusOK {
		t.Fatalf("anonymous token on loopback: %d", code)
	}
	if resp, _ := c.request(t, http.MethodGet, "/v2/", "Bearer "+anon); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v2/ with an anonymous token: %s", resp.Status)
	}
	resp, _ = c.request(t, http.MethodPost, "/v2/web/blobs/uploads/", "Bearer "+anon)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Errorf("upload with an anonymous token: %s %q; want 401 insufficient_scope", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}

	// Credentials get a token that pushes.
	if code, _ := c.token(t, basic(cred.Username, "guess")); code != http.StatusUnauthorized {
		t.Errorf("token for a wrong password: %d; want 401", code)
	}
	code, tok := c.token(t, basic(cred.Username, cred.Password))
	if code != http.StatusOK {
		t.Fatalf("token for the credential: %d", code)
	}
	if resp, _ := c.request(t, http.MethodPost, "/v2/web/blobs/uploads/", "Bearer "+tok); resp.StatusCode != http.StatusAccepted {
		t.Errorf("upload with the credential's token: %s; want 202", resp.Status)
	}
	// Basic works directly too (curl -u).
	if resp, _ := c.request(t, http.MethodPost, "/v2/web/blobs/uploads/", basic(cred.Username, cred.Password)); resp.StatusCode != http.StatusAccepted {
		t.Errorf("upload with Basic credentials: %s; want 202", resp.Status)
	}

	// Tokens that do not hold: forged, altered, from another registry, expired.
	other := startClank(t)
	_, foreign := other.token(t, basic(other.srv.Credential().Username, other.srv.Credential().Password))
	for name, bad := range map[string]string{
		"forged":  "a.99999999999.AAAA",
		"altered": "a" + anon[1:],
		"foreign": foreign,
		"expired": c.srv.access.issue(true, time.Now().Add(-time.Second)),
		"garbage": "nonsense",
	} {
		resp, _ := c.request(t, http.MethodPost, "/v2/web/blobs/uploads/", "Bearer "+bad)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("upload with a %s token: %s %q; want 401 invalid_token", name, resp.Status, resp.Header.Get("WWW-Authenticate"))
		}
		if resp, _ := c.request(t, http.MethodGet, "/v2/web/manifests/v1", "Bearer "+bad); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("pull with a %s token: %s; want 401", name, resp.Status)
		}
	}
}

// A request from another host (the registry on a LAN address) needs the
// credential for pulls too. Only loopback is a target here, so the requests
// go to the Server's handler with another remote address.
func TestPullFromAnotherHostNeedsCredentials(t *testing.T) {
	c := startClank(t)
	d := pushRandom(t, c.addr+"/web:v1", c.auth())
	cred := c.srv.Credential()
	_, anon := c.token(t, "")
	_, admin := c.token(t, basic(cred.Username, cred.Password))

	send := func(method, path, auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "http://192.0.2.7:5000"+path, nil)
		req.RemoteAddr = "192.0.2.7:40000"
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		c.srv.Handler().ServeHTTP(w, req)
		return w
	}
	for _, tc := range []struct {
		what, method, path, auth string
		want                     int
	}{
		{"anonymous pull", http.MethodGet, "/v2/web/manifests/v1", "", http.StatusUnauthorized},
		{"anonymous HEAD", http.MethodHead, "/v2/web/manifests/v1", "", http.StatusUnauthorized},
		{"anonymous referrers", http.MethodGet, "/v2/web/referrers/" + d, "", http.StatusUnauthorized},
		{"anonymous token", http.MethodGet, TokenPath, "", http.StatusUnauthorized},
		{"a loopback client's anonymous token", http.MethodGet, "/v2/web/manifests/v1", "Bearer " + anon, http.StatusUnauthorized},
		{"Basic credentials", http.MethodGet, "/v2/web/manifests/v1", basic(cred.Username, cred.Password), http.StatusOK},
		{"the credential's token", http.MethodGet, "/v2/web/manifests/v1", "Bearer " + admin, http.StatusOK},
		{"a token for the credential", http.MethodGet, TokenPath, basic(cred.Username, cred.Password), http.StatusOK},
	} {
		w := send(tc.method, tc.path, tc.auth)
		if w.Code != tc.want {
			t.Errorf("%s from 192.0.2.7: %d; want %d", tc.what, w.Code, tc.want)
		}
		if w.Code == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), `Bearer realm="http://192.0.2.7:5000/auth/token"`) &&
			!strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
			t.Errorf("%s from 192.0.2.7: challenge %q names no token endpoint on the host asked", tc.what, w.Header().Get("WWW-Authenticate"))
		}
	}
}

// The credential is generated once and kept in the data dir, readable by its
// owner only; the htpasswd file beside it is distribution's, and more users
// may be added to it.
func TestCredentialIsKeptInTheDataDir(t *testing.T) {
	dir := t.TempDir()
	s, err := NewServer(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	cred := s.Credential()
	if cred.Username != CredentialUser || len(cred.Password) < 40 {
		t.Fatalf("generated credential %q with a %d-character password", cred.Username, len(cred.Password))
	}
	s.Close()
	for _, f := range []string{credentialFile, htpasswdFile} {
		fi, err := os.Stat(filepath.Join(dir, authDir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", f, err, fi.Mode())
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, authDir)); fi.Mode().Perm() != 0o700 {
		t.Errorf("auth dir mode %v; want 0700", fi.Mode().Perm())
	}

	// Another user in htpasswd, as `htpasswd -B` writes it; the clank line
	// damaged by hand is written again on the next start, the other kept.
	ciHash, _ := bcrypt.GenerateFromPassword([]byte("ci-secret"), bcrypt.MinCost)
	hpath := filepath.Join(dir, authDir, htpasswdFile)
	if err := os.WriteFile(hpath, []byte("ci:"+string(ciHash)+"\nclank:$2y$05$damaged\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := NewServer(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if s2.Credential() != cred {
		t.Fatalf("credential after a restart %+v; want the kept %+v", s2.Credential(), cred)
	}
	addr := serve(t, s2.Handler())
	for user, pass := range map[string]string{"ci": "ci-secret", cred.Username: cred.Password} {
		pushRandom(t, addr+"/web:"+user, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	}

	if err := os.WriteFile(filepath.Join(dir, authDir, credentialFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("NewServer with a damaged credential: %v; want an error that says so", err)
	}
}
