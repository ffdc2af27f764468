package ssh

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/clank-dev/clank/ui"
)

// AuthorizedKeysFile is the authorized keys' name in the data dir.
const AuthorizedKeysFile = "authorized_keys"

// maxAuthorizedKeys bounds the file: thousands of keys fit; a file larger
// than this is a mistake, and every key is refused rather than half read.
const maxAuthorizedKeys = 4 << 20

// grant is what one authorized_keys line allows.
type grant struct {
	line int // where it was read, for the logs
	role ui.Role
	// sourceAddress is the line's from="..." as CIDRs: the callback matches
	// it, and x/crypto enforces it again.
	sourceAddress string
	expires       time.Time // expiry-time="...": refused from then on; zero = never
	noPTY         bool      // no-pty, or restrict without a later pty: no dashboard
	noTouch       bool      // no-touch-required: a security key's signature need not assert a touch
}

// admits says whether the line lets a connection from remote in at now.
func (g grant) admits(remote net.Addr, now time.Time) error {
	if !g.expires.IsZero() && now.After(g.expires) {
		return fmt.Errorf("line %d expired at %s (expiry-time)", g.line, g.expires.Format(time.RFC3339))
	}
	if g.sourceAddress == "" {
		return nil
	}
	host := remote.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	for _, cidr := range strings.Split(g.sourceAddress, ",") {
		if _, n, err := net.ParseCIDR(cidr); err == nil && ip != nil && n.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("line %d admits only from=%s", g.line, g.sourceAddress)
}

// authorizedKeys is <data-dir>/authorized_keys, read on every lookup (it is
// small, and authentication is rare) and parsed again whenever its bytes
// change: a rewrite of the same size within the same clock tick, or one
// that keeps the modification time, takes effect at once.
type authorizedKeys struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	data    []byte             // what was parsed last
	problem string             // why every key is refused ("" = the file was read)
	grants  map[string][]grant // by the key's wire encoding, in file order
}

// lookup says what a key may do from remote: the first line for the key that
// admits the connection, as OpenSSH takes it. ok is false for a key the file
// does not hold or whose every line refuses it (why is logged).
func (a *authorizedKeys) lookup(key gossh.PublicKey, remote net.Addr, now time.Time) (g grant, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refreshLocked()
	lines := a.grants[string(key.Marshal())]
	var why []string
	for _, g := range lines {
		err := g.admits(remote, now)
		if err == nil {
			return g, true
		}
		why = append(why, err.Error())
	}
	if len(why) > 0 {
		a.log.Warn("ssh: authorized_keys: key refused", "fingerprint", gossh.FingerprintSHA256(key),
			"remote", remote.String(), "why", strings.Join(why, "; "))
	}
	return grant{}, false
}

func (a *authorizedKeys) refreshLocked() {
	data, err := readAuthorizedKeys(a.path)
	if err != nil {
		problem := err.Error()
		if problem != a.problem {
			if errors.Is(err, fs.ErrNotExist) {
				a.log.Warn("ssh: no authorized_keys: every key is refused", "path", a.path)
			} else {
				a.log.Error("ssh: cannot read authorized_keys: every key is refused", "path", a.path, "err", err)
			}
		}
		a.problem, a.data, a.grants = problem, nil, map[string][]grant{}
		return
	}
	if a.problem == "" && a.grants != nil && bytes.Equal(data, a.data) {
		return
	}
	a.problem, a.data = "", data
	a.grants = parseAuthorizedKeys(data, a.log)
}

// readAuthorizedKeys reads the file whole, or says why it cannot: missing,
// not a regular file (a FIFO would block every login), unreadable, too large.
func readAuthorizedKeys(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, st.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, maxAuthorizedKeys+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxAuthorizedKeys {
		return nil, fmt.Errorf("%s is larger than %d MiB", path, maxAuthorizedKeys>>20)
	}
	return data, nil
}

// parseAuthorizedKeys reads OpenSSH authorized_keys lines. A line that cannot
// be honoured as written (a bad key, an option Clank cannot enforce or that
// makes no sense for a dashboard) is skipped with a warning rather than
// half-applied. A key on several lines keeps each, in order: the first one
// that admits a connection is used (a warning says so).
func parseAuthorizedKeys(data []byte, log *slog.Logger) map[string][]grant {
	grants := map[string][]grant{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, _, options, _, err := gossh.ParseAuthorizedKey(line)
		if err != nil {
			log.Warn("ssh: authorized_keys: skipping a line that is not a key", "line", n, "err", err)
			continue
		}
		fp := gossh.FingerprintSHA256(key)
		g, err := grantOf(options)
		if err != nil {
			log.Warn("ssh: authorized_keys: skipping a key", "line", n, "fingerprint", fp, "err", err)
			continue
		}
		g.line = n
		k := string(key.Marshal())
		if prev := grants[k]; len(prev) > 0 {
			log.Warn("ssh: authorized_keys: a key is on several lines: the first that admits a connection counts",
				"fingerprint", fp, "line", n, "first", prev[0].line)
		}
		grants[k] = append(grants[k], g)
	}
	return grants
}

// grantOf reads a line's options. OpenSSH's options each get an answer:
// honoured (from, expiry-time, no-pty/pty/restrict, no-touch-required), true
// of Clank already (forwarding, X11, agent and user rc: Clank offers none, so
// options that forbid or permit them change nothing), or refused with the
// line, because Clank cannot do what they ask (command, environment, tunnel,
// cert-authority, principals, verify-required). An unknown option refuses
// the line, as OpenSSH does.
func grantOf(options []string) (grant, error) {
	g := grant{role: ui.RoleViewer}
	for _, opt := range options {
		name, value, _ := strings.Cut(opt, "=")
		if uq, err := strconv.Unquote(value); err == nil {
			value = uq
		}
		switch strings.ToLower(name) {
		case "role":
			g.role = ui.ParseRole(value)
		case "from":
			cidrs, err := sourceCIDRs(value)
			if err != nil {
				return grant{}, err
			}
			g.sourceAddress = cidrs
		case "expiry-time":
			t, err := parseExpiry(value)
			if err != nil {
				return grant{}, err
			}
			g.expires = t
		case "restrict", "no-pty":
			g.noPTY = true
		case "pty":
			g.noPTY = false
		case "no-touch-required":
			g.noTouch = true
		case "no-agent-forwarding", "no-port-forwarding", "no-x11-forwarding", "no-user-rc",
			"agent-forwarding", "port-forwarding", "x11-forwarding", "user-rc",
			"permitopen", "permitlisten":
			// Clank forwards nothing and runs no rc: nothing to forbid or allow.
		case "command":
			return grant{}, errors.New("command= is not supported: Clank is not a shell, it serves only its dashboard")
		case "environment":
			return grant{}, errors.New("environment= is not supported: Clank runs no command to pass it to")
		case "tunnel":
			return grant{}, errors.New("tunnel= is not supported: Clank has no tunnel device")
		case "cert-authority", "principals":
			return grant{}, fmt.Errorf("%s is not supported: certificates are not accepted", strings.ToLower(name))
		case "verify-required":
			return grant{}, errors.New("verify-required is not supported: Clank cannot check a security key's user verification")
		default:
			return grant{}, fmt.Errorf("unknown option %q", name)
		}
	}
	return g, nil
}

// parseExpiry reads expiry-time's YYYYMMDD[HHMM[SS]][Z]: local time unless
// it ends in Z, as sshd(8) says.
func parseExpiry(v string) (time.Time, error) {
	loc := time.Local
	s := v
	if strings.HasSuffix(s, "Z") || strings.HasSuffix(s, "z") {
		loc, s = time.UTC, s[:len(s)-1]
	}
	layout := map[int]string{8: "20060102", 12: "200601021504", 14: "20060102150405"}[len(s)]
	if layout == "" {
		return time.Time{}, fmt.Errorf("expiry-time=%q: want YYYYMMDD[HHMM[SS]][Z]", v)
	}
	t, err := time.ParseInLocation(layout, s, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("expiry-time=%q: want YYYYMMDD[HHMM[SS]][Z]", v)
	}
	return t, nil
}

// sourceCIDRs turns from="..." into the CIDR list x/crypto enforces. Host
// names, wildcards and negations cannot be honoured that way, so they are
// refused instead of ignored.
func sourceCIDRs(list string) (string, error) {
	var out []string
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if _, _, err := net.ParseCIDR(p); err == nil {
			out = append(out, p)
			continue
		}
		ip := net.ParseIP(p)
		if ip == nil {
			return "", fmt.Errorf("from=%q: only addresses and CIDRs are supported", p)
		}
		bits := 32
		if ip.To4() == nil {
			bits = 128
		}
		out = append(out, p+"/"+strconv.Itoa(bits))
	}
	return strings.Join(out, ","), nil
}
