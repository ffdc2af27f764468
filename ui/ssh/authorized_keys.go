package ssh

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	gossh "golang.org/x/crypto/ssh"

	"github.com/clank-dev/clank/ui"
)

// AuthorizedKeysFile is the authorized keys' name in the data dir.
const AuthorizedKeysFile = "authorized_keys"

// grant is what one authorized_keys line allows.
type grant struct {
	role ui.Role
	// sourceAddress is the line's from="..." as CIDRs, enforced by x/crypto.
	sourceAddress string
}

// authorizedKeys is <data-dir>/authorized_keys, parsed again whenever its
// size, modification time or inode changes.
type authorizedKeys struct {
	path string
	log  *slog.Logger

	mu     sync.Mutex
	stat   fs.FileInfo
	grants map[string]grant // by the key's wire encoding
}

// lookup says what a key may do; ok is false for a key the file does not hold.
func (a *authorizedKeys) lookup(key gossh.PublicKey) (g grant, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refreshLocked()
	g, ok = a.grants[string(key.Marshal())]
	return g, ok
}

func (a *authorizedKeys) refreshLocked() {
	st, err := os.Stat(a.path)
	if err != nil {
		if a.stat != nil || a.grants == nil {
			if errors.Is(err, fs.ErrNotExist) {
				a.log.Warn("ssh: no authorized_keys: every key is refused", "path", a.path)
			} else {
				a.log.Error("ssh: cannot read authorized_keys: every key is refused", "path", a.path, "err", err)
			}
		}
		a.stat, a.grants = nil, map[string]grant{}
		return
	}
	if a.stat != nil && os.SameFile(a.stat, st) && st.Size() == a.stat.Size() && st.ModTime().Equal(a.stat.ModTime()) {
		return
	}
	data, err := os.ReadFile(a.path)
	if err != nil {
		a.log.Error("ssh: cannot read authorized_keys: every key is refused", "path", a.path, "err", err)
		a.stat, a.grants = nil, map[string]grant{}
		return
	}
	a.stat = st
	a.grants = parseAuthorizedKeys(data, a.log)
}

// parseAuthorizedKeys reads OpenSSH authorized_keys lines. A line that cannot
// be honoured as written (a bad key, cert-authority, a from= pattern that is
// not an address) is skipped with a warning rather than half-applied.
func parseAuthorizedKeys(data []byte, log *slog.Logger) map[string]grant {
	grants := map[string]grant{}
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
		g, err := grantOf(options)
		if err != nil {
			log.Warn("ssh: authorized_keys: skipping a key", "line", n, "fingerprint", gossh.FingerprintSHA256(key), "err", err)
			continue
		}
		grants[string(key.Marshal())] = g
	}
	return grants
}

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
		case "cert-authority":
			return grant{}, errors.New("cert-authority is not supported")
		case "from":
			cidrs, err := sourceCIDRs(value)
			if err != nil {
				return grant{}, err
			}
			g.sourceAddress = cidrs
		}
	}
	return g, nil
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
