package registry

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/distribution/v3/registry/api/errcode"
	"github.com/distribution/distribution/v3/registry/auth"
	_ "github.com/distribution/distribution/v3/registry/auth/htpasswd" // registers "htpasswd"
	"golang.org/x/crypto/bcrypt"
)

// Registry access (README.md, "Who may do what"): pushes and deletes need
// credentials; pulls from loopback are anonymous, so that the local Docker
// engine pulls with no configuration.
//
// The mechanism is the Docker token flow (Bearer), as on Docker Hub, and not
// plain Basic auth: Docker clients choose how to authenticate from the
// challenge of their first GET /v2/, which carries no credentials and is the
// same for a pull and a push. A Basic challenge there makes every anonymous
// pull fail ("no basic auth credentials"); no challenge there makes a push
// with credentials go out without them. With a Bearer challenge, a client
// with no credentials fetches an anonymous token (granted on loopback only,
// for pulls) and a logged-in client fetches one with its password. Passwords
// are checked by distribution's htpasswd access controller; tokens are
// opaque, signed with a key that lives as long as the Server.
const (
	// CredentialUser is the user of the credential the Server generates.
	CredentialUser = "clank"
	// TokenPath is the token endpoint that Bearer challenges name.
	TokenPath = "/auth/token"
	// authService names the registry in challenges and token requests.
	authService = "clank-registry"
	// tokenTTL is how long a token is good for; clients fetch a new one
	// when it runs out.
	tokenTTL = 10 * time.Minute
	// authDir holds the credential and the htpasswd file, under the
	// registry's data directory (beside distribution's docker/ tree).
	authDir        = "auth"
	credentialFile = "credential.json"
	htpasswdFile   = "htpasswd"
)

// Credential is a user and password that may push to and delete from the
// Clank registry.
type Credential struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// errBadCredentials is a request that presented a password or a token that
// does not hold.
var errBadCredentials = errors.New("invalid credentials")

// access decides who may do what on the registry. It implements
// distribution's auth.AccessController, so that distribution computes the
// access every request needs (pull, push, delete, catalog; the source of a
// cross-repository mount) and asks it.
type access struct {
	cred      Credential
	passwords auth.AccessController // distribution's htpasswd controller
	key       []byte                // signs tokens
}

// The App reaches the Server's access through its configuration: auth
// controllers are registered by name, process-wide, and built from options.
const accessControllerName = "clank"

func init() {
	if err := auth.Register(accessControllerName, func(options map[string]any) (auth.AccessController, error) {
		a, ok := options["access"].(*access)
		if !ok {
			return nil, errors.New("registry: no access in the auth options")
		}
		return a, nil
	}); err != nil {
		panic(err)
	}
}

// newAccess loads the registry's credential from dir/auth (generating it on
// first use) and makes sure the htpasswd file there accepts it. An htpasswd
// file may hold more users (bcrypt lines, as `htpasswd -B` writes them).
func newAccess(dir string) (*access, error) {
	adir := filepath.Join(dir, authDir)
	if err := os.MkdirAll(adir, 0o700); err != nil {
		return nil, fmt.Errorf("registry: credential directory: %w", err)
	}
	cred, err := loadOrCreateCredential(filepath.Join(adir, credentialFile))
	if err != nil {
		return nil, err
	}
	hpath := filepath.Join(adir, htpasswdFile)
	if err := ensureHtpasswd(hpath, cred); err != nil {
		return nil, err
	}
	// The file exists now: distribution's controller would otherwise create
	// one with a password of its own and log it.
	passwords, err := auth.GetAccessController("htpasswd", map[string]any{"realm": authService, "path": hpath})
	if err != nil {
		return nil, fmt.Errorf("registry: htpasswd: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("registry: token key: %w", err)
	}
	return &access{cred: cred, passwords: passwords, key: key}, nil
}

func loadOrCreateCredential(path string) (Credential, error) {
	var c Credential
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &c); err != nil || c.Username == "" || c.Password == "" {
			return c, fmt.Errorf("registry: credential %s is damaged: remove it and restart to generate a new one", path)
		}
		return c, nil
	case !errors.Is(err, fs.ErrNotExist):
		return c, fmt.Errorf("registry: credential: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return c, fmt.Errorf("registry: credential: %w", err)
	}
	c = Credential{Username: CredentialUser, Password: base64.RawURLEncoding.EncodeToString(secret)}
	data, _ = json.Marshal(c)
	if err := writePrivate(path, append(data, '\n')); err != nil {
		return c, fmt.Errorf("registry: credential: %w", err)
	}
	return c, nil
}

// ensureHtpasswd makes the htpasswd file at path hold a line for c that
// verifies, keeping every other user's line.
func ensureHtpasswd(path string, c Credential) error {
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("registry: htpasswd: %w", err)
	}
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		user, hash, _ := strings.Cut(strings.TrimSpace(line), ":")
		if user == c.Username {
			if bcrypt.CompareHashAndPassword([]byte(hash), []byte(c.Password)) == nil {
				return nil
			}
			continue
		}
		keep.WriteString(line + "\n")
	}
	// The password is 256 random bits: bcrypt's work factor adds nothing
	// against guessing it, and the lowest one keeps a check near a
	// millisecond (a token request, a Basic request).
	hash, err := bcrypt.GenerateFromPassword([]byte(c.Password), bcrypt.MinCost)
	if err != nil {
		return fmt.Errorf("registry: htpasswd: %w", err)
	}
	fmt.Fprintf(&keep, "%s:%s\n", c.Username, hash)
	if err := writePrivate(path, keep.Bytes()); err != nil {
		return fmt.Errorf("registry: htpasswd: %w", err)
	}
	return nil
}

// writePrivate replaces path with data, readable by its owner only.
func writePrivate(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// authenticated reports whether r carries the registry's credentials (Basic,
// checked against htpasswd) or a token issued for them; false for a request
// with neither or with an anonymous token. A password or token that does not
// hold is errBadCredentials.
func (a *access) authenticated(r *http.Request) (bool, error) {
	scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	switch {
	case scheme == "":
		return false, nil
	case strings.EqualFold(scheme, "basic"):
		if _, err := a.passwords.Authorized(r); err != nil {
			return false, errBadCredentials
		}
		return true, nil
	case strings.EqualFold(scheme, "bearer"):
		admin, ok := a.verify(strings.TrimSpace(value))
		if !ok {
			return false, errBadCredentials
		}
		return admin, nil
	}
	return false, errBadCredentials
}

// Authorized is distribution's access check. Credentials may do anything.
// Without them a loopback client may pull; the base route (GET /v2/) is
// challenged all the same, because that is where clients learn how to
// authenticate, unless it already carries a token.
func (a *access) Authorized(r *http.Request, wants ...auth.Access) (*auth.Grant, error) {
	admin, err := a.authenticated(r)
	switch {
	case err != nil:
		return nil, &challenge{scope: scope(wants), err: "invalid_token"}
	case admin:
		return &auth.Grant{User: auth.UserInfo{Name: a.cred.Username}}, nil
	case len(wants) == 0 && r.Header.Get("Authorization") == "":
		return nil, &challenge{}
	case loopback(r) && pullsOnly(wants):
		return &auth.Grant{User: auth.UserInfo{Name: "anonymous"}}, nil
	}
	c := &challenge{scope: scope(wants)}
	if r.Header.Get("Authorization") != "" {
		c.err = "insufficient_scope"
	}
	return nil, c
}

func pullsOnly(wants []auth.Access) bool {
	for _, w := range wants {
		if w.Type != "repository" || w.Action != "pull" {
			return false
		}
	}
	return true
}

// loopback reports whether r came from this machine over loopback.
func loopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// scope is the challenge's scope for wants, in the token spec's form
// ("repository:web:pull,push repository:base:pull").
func scope(wants []auth.Access) string {
	var order []string
	actions := map[string][]string{}
	for _, w := range wants {
		res := w.Type + ":" + w.Name
		if _, ok := actions[res]; !ok {
			order = append(order, res)
		}
		actions[res] = append(actions[res], w.Action)
	}
	parts := make([]string, 0, len(order))
	for _, res := range order {
		parts = append(parts, res+":"+strings.Join(actions[res], ","))
	}
	return strings.Join(parts, " ")
}

// challenge is a 401's Bearer challenge, naming the token endpoint on the
// host the client asked for.
type challenge struct {
	scope string
	err   string // "", "invalid_token" or "insufficient_scope"
}

func (c *challenge) Error() string {
	if c.err != "" {
		return "registry access: " + c.err
	}
	return "registry access: authentication required"
}

func (c *challenge) SetHeaders(r *http.Request, w http.ResponseWriter) {
	v := fmt.Sprintf("Bearer realm=%q,service=%q", "http://"+r.Host+TokenPath, authService)
	if c.scope != "" {
		v += fmt.Sprintf(",scope=%q", c.scope)
	}
	if c.err != "" {
		v += fmt.Sprintf(",error=%q", c.err)
	}
	w.Header().Set("WWW-Authenticate", v)
}

// refuse answers r with 401, err's challenge and distribution's error body.
func refuse(w http.ResponseWriter, r *http.Request, err error) {
	var ch auth.Challenge
	if errors.As(err, &ch) {
		ch.SetHeaders(r, w)
	}
	_ = errcode.ServeJSON(w, errcode.ErrorCodeUnauthorized)
}

// serveToken is the token endpoint: credentials (Basic) get a token that
// may do anything; no credentials get an anonymous token, from loopback only.
// The token is the same whatever the scope asked: Authorized decides.
func (a *access) serveToken(w http.ResponseWriter, r *http.Request) {
	admin, err := a.authenticated(r)
	if err == nil && !admin && r.Header.Get("Authorization") != "" {
		err = errBadCredentials // a Bearer token is no way to get a token
	}
	if err != nil || (!admin && !loopback(r)) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", authService))
		_ = errcode.ServeJSON(w, errcode.ErrorCodeUnauthorized)
		return
	}
	now := time.Now()
	tok := a.issue(admin, now.Add(tokenTTL))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token": tok, "access_token": tok,
		"expires_in": int(tokenTTL.Seconds()), "issued_at": now.UTC().Format(time.RFC3339),
	})
}

// A token is "<kind>.<expiry>.<mac>": kind "a" (credentials) or "n"
// (anonymous), expiry in unix seconds, and an HMAC-SHA256 of both.
func (a *access) issue(admin bool, exp time.Time) string {
	kind := "n"
	if admin {
		kind = "a"
	}
	body := kind + "." + strconv.FormatInt(exp.Unix(), 10)
	return body + "." + a.mac(body)
}

func (a *access) mac(body string) string {
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// verify reports whether tok is a token of this Server that has not run out,
// and whether it was issued for credentials.
func (a *access) verify(tok string) (admin, ok bool) {
	i := strings.LastIndexByte(tok, '.')
	if i < 0 || !hmac.Equal([]byte(tok[i+1:]), []byte(a.mac(tok[:i]))) {
		return false, false
	}
	kind, exp, _ := strings.Cut(tok[:i], ".")
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || time.Now().Unix() > secs {
		return false, false
	}
	return kind == "a", true
}

// withAccess serves the token endpoint and checks the requests that reach
// the registry outside distribution's App (the referrers API).
func (s *Server) withAccess(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == TokenPath {
			if r.Method != http.MethodGet {
				w.Header().Set("Allow", http.MethodGet)
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			s.access.serveToken(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Credential is what pushes and deletes need; `clank registry login` gives
// it to the Docker CLI and the daemon pushes with it.
func (s *Server) Credential() Credential { return s.access.cred }
