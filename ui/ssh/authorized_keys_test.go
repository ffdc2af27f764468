package ssh

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/clank-dev/clank/ui"
)

func pubLine(t *testing.T) (gossh.PublicKey, string) {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))
}

func TestParseAuthorizedKeys(t *testing.T) {
	admin, adminLine := pubLine(t)
	viewer, viewerLine := pubLine(t)
	plain, plainLine := pubLine(t)
	odd, oddLine := pubLine(t)
	ca, caLine := pubLine(t)
	host, hostLine := pubLine(t)
	lan, lanLine := pubLine(t)
	file := strings.Join([]string{
		"# comment",
		"",
		`role="admin" ` + adminLine + " alice@laptop",
		`no-pty,role="viewer" ` + viewerLine,
		plainLine + " no role",
		`role="root" ` + oddLine,
		`cert-authority ` + caLine,
		`from="*.example.com" ` + hostLine,
		`from="10.0.0.0/8,192.168.1.5",role="admin" ` + lanLine,
		"ssh-ed25519 not-base64!!",
	}, "\n")
	grants := parseAuthorizedKeys([]byte(file), slog.New(slog.NewTextHandler(io.Discard, nil)))

	for _, c := range []struct {
		name string
		key  gossh.PublicKey
		want *grant
	}{
		{"admin", admin, &grant{role: ui.RoleAdmin}},
		{"viewer", viewer, &grant{role: ui.RoleViewer}},
		{"no role is a viewer", plain, &grant{role: ui.RoleViewer}},
		{"unknown role is a viewer", odd, &grant{role: ui.RoleViewer}},
		{"cert-authority is refused", ca, nil},
		{"host pattern is refused", host, nil},
		{"addresses are kept", lan, &grant{role: ui.RoleAdmin, sourceAddress: "10.0.0.0/8,192.168.1.5/32"}},
	} {
		g, ok := grants[string(c.key.Marshal())]
		switch {
		case c.want == nil && ok:
			t.Errorf("%s: granted %+v", c.name, g)
		case c.want != nil && (!ok || g != *c.want):
			t.Errorf("%s: got %+v (%v), want %+v", c.name, g, ok, *c.want)
		}
	}
	if len(grants) != 5 {
		t.Errorf("%d keys granted, want 5", len(grants))
	}
}
