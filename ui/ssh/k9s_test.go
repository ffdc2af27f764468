package ssh_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// c and C copy over SSH: the OSC 52 sequence reaches the client's terminal
// in the session's byte stream, with the deployment's id and image digest;
// and the footer says what was copied.
func TestCopyReachesTheSSHClient(t *testing.T) {
	w := realdaemon.Start(t)
	dir := t.TempDir()
	k := newKey(t)
	writeAuthorizedKeys(t, dir, authLine(k, ""))
	srv := serveOn(t, dir, w.Backend())
	tm := srv.open(t, "viewer", k)
	tm.waitFor("testhost", realdaemon.Service, "ACTIVE")
	tm.press("\r")
	// The deployments' row: its KIND says so ("#2" and ACTIVE alone are
	// the services list's row too, there before the table is).
	tm.waitLine("#2 ", "ACTIVE", "deploy")
	tm.press("c")
	tm.waitFor("copied web #2's id")
	tm.press("C")
	tm.waitFor("copied web #2's image digest")
	for _, want := range []string{w.Current.ID, w.Current.ImageDigest} {
		osc := "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte(want)) + "\a"
		tm.waitUntil(func(string) string {
			tm.mu.Lock()
			defer tm.mu.Unlock()
			if !strings.Contains(tm.raw.String(), osc) {
				return "never sent the OSC 52 sequence for " + want
			}
			return ""
		})
	}
	// The `:` prompt over SSH: a command by name.
	tm.press(":copy\r")
	tm.waitFor("copied web #2's id")
}

// Ten sessions polling the live CPU and memory every 2.5 s share their
// reads: about one call to the daemon a second, not one per session a poll.
func TestSessionsShareTheStatsReads(t *testing.T) {
	w := quiet(t)
	dir := t.TempDir()
	k := newKey(t)
	writeAuthorizedKeys(t, dir, authLine(k, ""))
	srv := serveOn(t, dir, w.Backend())
	const n = 10
	for range n {
		tm := srv.open(t, "viewer", k)
		tm.waitFor("testhost", "CPU", "MEM")
	}
	before := srv.srv.StatsReads()
	time.Sleep(6 * time.Second)
	// Unshared: n sessions × 2 or 3 polls in 6 s; shared: at most one a second.
	if got := srv.srv.StatsReads() - before; got < 1 || got > 8 {
		t.Fatalf("%d sessions made %d reads of the stats in 6 s, want 1 to 8 (one per second at most)", n, got)
	}
}
