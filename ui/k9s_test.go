package ui_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// rowNumbers are the deployment numbers of the table's rows on screen, top
// to bottom (in the right-hand pane when the panes are side by side).
func rowNumbers(frame string) []int {
	var out []int
	for line := range strings.Lines(frame) {
		if i := strings.LastIndex(line, "│"); i >= 0 {
			line = line[i+len("│"):]
		}
		if m := rowRe.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			out = append(out, n)
		}
	}
	return out
}

var rowRe = regexp.MustCompile(`^(?:▌ |  |r▸)#(\d+) `)

// selectedRow is the number of the row the cursor is on (0: none).
func selectedRow(frame string) int {
	line := paneLine(frame, "▌ #")
	if line == "" {
		return 0
	}
	_, rest, _ := strings.Cut(line, "▌ #")
	n, _ := strconv.Atoi(strings.Fields(rest)[0])
	return n
}

// waitOrder waits until the table's rows are the numbers want, top to
// bottom, with the cursor on selected.
func (s *screen) waitOrder(selected int, want ...int) {
	s.t.Helper()
	s.waitUntil(func(frame string) string {
		if got := rowNumbers(frame); !slices.Equal(got, want) {
			return "never showed the rows " + sprintInts(want) + " (shows " + sprintInts(got) + ")"
		}
		if got := selectedRow(frame); got != selected {
			return "never had the cursor on #" + strconv.Itoa(selected) + " (on #" + strconv.Itoa(got) + ")"
		}
		return ""
	})
}

func sprintInts(ns []int) string {
	var b strings.Builder
	for i, n := range ns {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("#" + strconv.Itoa(n))
	}
	return b.String()
}

// k9sHabits are TestDashboardOnARealHistory's subtests of the k9s habits:
// row positions, sorting. They only look.
func k9sHabits(t *testing.T, w *realdaemon.HistoryWorld, backend func(*testing.T) *realdaemon.Counting) {
	t.Run("row position and sort", func(t *testing.T) {
		for _, size := range sizes {
			t.Run(size.name, func(t *testing.T) {
				s := open(t, backend(t), ui.RoleAdmin, size.w, size.h)
				// The services list says where its cursor is: api of 3.
				s.waitFor("1/3")
				openWeb(s)
				s.waitFor("1/5 · ")
				s.waitOrder(5, 5, 4, 3, 2, 1)
				s.press("j")
				s.waitOrder(4, 5, 4, 3, 2, 1)
				s.waitFor("2/5 · ", "#↓")

				// By status: ACTIVE, then INACTIVE (newest first), then FAILED;
				// the cursor stays on #4, now the second row.
				s.press("s")
				s.waitOrder(4, 5, 4, 2, 1, 3)
				s.waitFor("STATUS↑", "by status ↑", "2/5 · ")
				s.never("#↓")
				s.golden()
				s.press("S")
				s.waitOrder(4, 3, 4, 2, 1, 5)
				s.waitFor("STATUS↓", "by status ↓", "2/5 · ")
				// KIND, then IMAGE: v1 (#1, #4), v2 (#2), v3 (#3, #5).
				s.press("s", "s")
				s.waitOrder(4, 4, 1, 2, 5, 3)
				s.waitFor("IMAGE↑", "by image ↑")
				// G goes to the view's last row, not to the oldest deployment.
				s.press("G")
				s.waitOrder(3, 4, 1, 2, 5, 3)
				s.waitFor("5/5 · ")
				// AGE: youngest first, as the default; then BY, then # again.
				s.press("s")
				s.waitOrder(3, 5, 4, 3, 2, 1)
				s.waitFor("AGE↑", "newest first")
				s.press("s", "s")
				s.waitFor("#↓", "3/5 · ")
				s.waitOrder(3, 5, 4, 3, 2, 1)
			})
		}
	})

	t.Run("command mode", func(t *testing.T) {
		b := backend(t)
		s := open(t, b, ui.RoleAdmin, 80, 24)
		s.waitFor("r rollback to #1") // api's rows are read

		// A service's name jumps to its deployments, focused.
		s.press(":", "w", "e", "b")
		s.waitFor(":web█", "web  tab complete")
		s.press("enter")
		s.waitDeployments("web")
		s.waitOrder(5, 5, 4, 3, 2, 1)
		s.press(":", "s", "e", "r", "v", "i", "c", "e", " ", "a", "p", "i", "enter")
		s.waitDeployments("api")

		// tab completes a command and a service.
		s.press(":", "r", "o", "tab")
		s.waitFor(":rollback █", "r: roll back")
		s.press("w", "o", "tab")
		s.waitFor(":rollback worker █")
		// esc cancels: no modal, the table as it was.
		s.press("esc")
		s.waitGone(":rollback")
		if frame := s.handled(); strings.Contains(frame, "Roll back") || !strings.Contains(frame, "▸ api deployments") {
			t.Fatalf("esc ran the command:\n%s", frame)
		}

		// An unknown command says so on one line and changes nothing else.
		before := s.handled()
		s.press(":", "x", "y", "z", "enter")
		s.waitFor(`unknown command "xyz": not a command or a service`)
		after := s.handled()
		if strip := func(f string) string { l := strings.Split(f, "\n"); return strings.Join(l[:len(l)-1], "\n") }; strip(before) != strip(after) {
			t.Fatalf("an unknown command changed the screen:\n%s\nthen\n%s", before, after)
		}
		s.press(":", "s", "e", "r", "v", "i", "c", "e", " ", "n", "o", "p", "e", "enter")
		s.waitFor(`:service NAME: no service "nope"`)

		// An action by name is its key: on the selected row, the same modal.
		s.press(":", "w", "e", "b", "enter")
		s.waitDeployments("web")
		s.press("j", "j", "j", ":", "r", "o", "l", "l", "b", "a", "c", "k", "enter")
		s.waitFor("Roll back web to #2", "Changes against ACTIVE #5", "Cancel")
		s.press("esc")
		s.waitGone("Changes against")
		// With a service's name, as from the services list: r's target.
		s.press(":", "r", "o", "l", "l", "b", "a", "c", "k", " ", "a", "p", "i", "enter")
		s.waitFor("Roll back api to #1")
		s.waitForModal("domain shop.localhost is taken by service worker") // the daemon's refusal, as for r
		s.press("esc")
		s.waitGone("Changes against")
		s.press(":", "l", "o", "g", "s", "enter")
		s.waitFor("logs · api (active)")
		s.press(":", "q", "enter")
		s.tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
		if p, a := b.Plans.Load(), b.Acts.Load(); p != 2 || a != 0 {
			t.Fatalf("the commands asked %d plans and %d acts, want 2 and 0", p, a)
		}
	})

	t.Run("command mode as a viewer", func(t *testing.T) {
		b := backend(t)
		s := open(t, b, ui.RoleViewer, 80, 24)
		s.press(":", "r", "e", "d", "e", "p", "l", "o", "y", " ", "w", "e", "b", "enter")
		s.waitFor("read-only: viewer role")
		s.press("esc")
		s.waitGone("read-only")
		s.press(":", "u", "n", "f", "r", "e", "e", "z", "e", "enter")
		s.waitFor("read-only: viewer role: ask an admin to unfreeze web")
		if p, a := b.Plans.Load(), b.Acts.Load(); p+a != 0 {
			t.Fatalf("a viewer's commands reached the daemon: %d plans, %d acts", p, a)
		}
	})

	t.Run("copy id and digest", func(t *testing.T) {
		s := open(t, backend(t), ui.RoleAdmin, 80, 24)
		openWeb(s)
		s.press("j", "c")
		s.waitFor("copied web #4's id " + w.Web[4].ID)
		s.press("C")
		s.waitFor("copied web #4's image digest " + w.Web[4].ImageDigest[:20])
		s.press("enter", "c") // from its detail too
		s.waitFor("web #4", "copied web #4's id")
		_ = s.tm.Quit()
		out := s.tm.FinalOutput(t, teatest.WithFinalTimeout(10*time.Second))
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(out); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{w.Web[4].ID, w.Web[4].ImageDigest} {
			osc := "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte(want)) + "\a"
			if !strings.Contains(buf.String(), osc) {
				t.Errorf("no OSC 52 sequence setting the clipboard to %s in the program's output", want)
			}
		}
	})

	t.Run("command prompt", func(t *testing.T) {
		for _, size := range sizes {
			t.Run(size.name, func(t *testing.T) {
				s := open(t, backend(t), ui.RoleAdmin, size.w, size.h)
				s.waitFor("r rollback to #1")
				s.press(":", "r")
				s.waitFor(":r█", "redeploy rollback", "tab complete · enter run · esc cancel")
				s.golden()
				s.press("esc")
				s.waitGone(":r█")
			})
		}
	})

	t.Run("mouse", func(t *testing.T) {
		s := open(t, backend(t), ui.RoleAdmin, 200, 50)
		s.waitFor("api deployments", "r rollback to #1")
		click := func(x, y int) { s.tm.Send(tea.MouseClickMsg{X: x, Y: y, Button: tea.MouseLeft}) }
		wheel := func(x, y int, b tea.MouseButton) { s.tm.Send(tea.MouseWheelMsg{X: x, Y: y, Button: b}) }
		// Line 0 is the header; each pane has a title and a column header:
		// the services' rows are api (3), web (4), worker (5).
		click(5, 4)
		s.waitFor("▸ Services", "2/3", "web deployments", "rollback of #1")
		// The deployments' third row is #3; clicking it focuses the table.
		click(150, 5)
		s.waitFor("▸ web deployments", "3/5 · ")
		s.waitOrder(3, 5, 4, 3, 2, 1)
		// The wheel moves the table's cursor, three rows a notch.
		wheel(150, 10, tea.MouseWheelDown)
		s.waitOrder(1, 5, 4, 3, 2, 1)
		wheel(150, 10, tea.MouseWheelUp)
		s.waitOrder(4, 5, 4, 3, 2, 1)
		// Over the services, it moves theirs, and the deployments follow.
		wheel(5, 10, tea.MouseWheelDown)
		s.waitFor("worker deployments", "3/3")
		// A click below the rows, or on the divider, selects nothing.
		click(5, 30)
		s.waitFor("▸ Services", "3/3")

		d := open(t, backend(t), ui.RoleAdmin, 80, 24)
		openWeb(d)
		d.press("j", "enter")
		d.waitFor("web #4", "rollback of #1", "API_KEY=")
		d.waitGone("loading…")
		top := strings.Split(d.plain(), "\n")[3]
		d.tm.Send(tea.MouseWheelMsg{X: 10, Y: 10, Button: tea.MouseWheelDown})
		d.waitUntil(func(frame string) string {
			if strings.Split(frame, "\n")[3] == top {
				return "never scrolled the detail"
			}
			return ""
		})
	})

	t.Run("sort keys are for the deployments", func(t *testing.T) {
		s := open(t, backend(t), ui.RoleAdmin, 80, 24)
		s.press("s")
		s.waitFor("s and S sort the deployments: open a service's deployments first")
		s.waitFor("1/3")
	})
}

// Sorted by status, the cursor stays on its deployment while live events
// move the rows: a deploy's row comes on top as DEPLOYING, and the rows
// change places as it goes ACTIVE and the one before goes INACTIVE.
func TestSortFollowsLiveUpdates(t *testing.T) {
	t.Parallel()
	w := realdaemon.Start(t)
	s := open(t, w.Backend(), ui.RoleAdmin, 80, 24)
	focusDeployments(s)
	s.waitOrder(2, 2, 1)
	s.press("s")
	s.waitOrder(2, 2, 1)
	s.waitFor("STATUS↑", "1/2 · ")

	d := w.Act(api.ActionRequest{Kind: "deploy", Service: realdaemon.Service, Image: w.Image("v3")})
	s.waitUntil(func(frame string) string {
		if got := rowNumbers(frame); len(got) != 3 || got[0] != 3 {
			return "never showed #3 on top: " + sprintInts(got)
		}
		if selectedRow(frame) != 2 {
			return "moved the cursor off #2"
		}
		return ""
	})
	w.WaitStatus(d.ID, "ACTIVE", realdaemon.DeployWithin)
	w.Settle(realdaemon.Service)
	s.waitRow(2, "INACTIVE")
	s.waitOrder(2, 3, 2, 1)
	s.waitFor("2/3 · ")
}

// Live CPU and memory come from the daemon's one sampler: GET /v1/stats
// answers the ACTIVE container of each service (JSON shape included), CPU
// from the second sample on, and the sampler's rounds do not grow with the
// callers: several dashboards and API callers asking at once cost one
// round per interval; once no one asks, it stops. On screen: the services
// list's CPU and MEM, and the ACTIVE deployment's detail.
func TestLiveUsageFromTheRealDaemon(t *testing.T) {
	t.Parallel()
	w := realdaemon.Start(t)
	eng := w.Daemon.Engine
	rounds0 := eng.StatsRounds()
	if rounds0 != 0 {
		t.Fatalf("the sampler ran %d rounds before anyone asked", rounds0)
	}
	// Busy the app a little, through the router.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				w.Get(realdaemon.Service, "/")
			}
		}
	}()
	defer func() { close(stop); <-done }()

	// Three dashboards and a CLI-like caller ask at once for about 7 s.
	for range 3 {
		s := open(t, w.Backend(), ui.RoleViewer, 200, 50)
		s.waitFor("CPU    MEM")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The last whole reading: on a loaded machine a round's Docker call may
	// pass its bound and leave the container out of that round.
	// Seven seconds of callers count the rounds; the asking goes on (up to
	// 30 s more) until a whole reading has come.
	var last []api.ServiceStats
	whole := func(st []api.ServiceStats) bool {
		return len(st) == 1 && len(st[0].Containers) == 1 && st[0].CPUPercent != nil
	}
	start := time.Now()
	rounds := -1
	for time.Since(start) < 37*time.Second {
		if rounds < 0 && time.Since(start) >= 7*time.Second {
			rounds = eng.StatsRounds() - rounds0
			if whole(last) {
				break
			}
		}
		st, err := w.Client.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if last == nil || whole(st) {
			last = st
		}
		if rounds >= 0 && whole(last) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(last) != 1 || last[0].Service != realdaemon.Service || last[0].Deployment != w.Current.ID || last[0].Number != 2 ||
		len(last[0].Containers) != 1 || last[0].Containers[0].ContainerID != w.Current.ContainerID {
		t.Fatalf("stats = %+v; want web #2 (%s) with its one container %s", last, w.Current.ID, w.Current.ContainerID)
	}
	s0 := last[0]
	if s0.CPUPercent == nil || *s0.CPUPercent <= 0 || *s0.CPUPercent > 400 || s0.MemoryBytes < 64<<10 || s0.MemoryBytes > 1<<30 ||
		s0.MemoryLimit < s0.MemoryBytes || s0.Containers[0].SampledAt.IsZero() {
		t.Fatalf("web's use: cpu %v%%, memory %d of %d bytes; want a busy app's (> 0%%, 64 KiB .. 1 GiB)", s0.CPUPercent, s0.MemoryBytes, s0.MemoryLimit)
	}
	// Seven seconds of callers (some 40 calls and three dashboards' polls):
	// one round every StatsInterval (2.5 s), so 3 to 5 rounds (fewer when
	// the loaded machine's Docker is slow, never more).
	if rounds < 1 || rounds > 6 {
		t.Fatalf("the sampler ran %d rounds in 7 s of many callers, want one per %s", rounds, engine.StatsInterval)
	}

	// The JSON, as any client reads it.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", w.Daemon.Socket())
	}}}
	resp, err := hc.Get("http://clank/v1/stats")
	if err != nil {
		t.Fatal(err)
	}
	var raw []map[string]any
	err = json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	if err != nil || len(raw) != 1 {
		t.Fatalf("GET /v1/stats: %v, %v", raw, err)
	}
	for _, k := range []string{"service", "deployment_id", "number", "cpu_percent", "memory_bytes", "memory_limit_bytes", "containers"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("GET /v1/stats: no %q in %v", k, raw[0])
		}
	}

	// On screen: the list's cell and the detail's line.
	for _, size := range sizes {
		t.Run(size.name, func(t *testing.T) {
			s := open(t, w.Backend(), ui.RoleViewer, size.w, size.h)
			s.waitUntil(func(frame string) string {
				if !regexp.MustCompile(`web .*[0-9.]+% +[0-9.]+[KMG] `).MatchString(frame) {
					return "never showed web's CPU and memory"
				}
				return ""
			})
			focusDeployments(s)
			s.press("enter")
			s.waitUntil(func(frame string) string {
				if !regexp.MustCompile(`usage +cpu +[0-9.]+% · memory +[0-9.]+[KMG]`).MatchString(frame) {
					return "never showed the usage line"
				}
				return ""
			})
			// The whole record and its lifecycle, read from the daemon
			// (they come together).
			s.waitGone("loading…")
			s.golden()
		})
	}
}

// The sampler stops once no one asked for StatsIdle: an idle daemon reads
// nothing from Docker.
func TestStatsSamplerStopsWhenNoOneAsks(t *testing.T) {
	t.Parallel()
	w := realdaemon.New(t)
	eng := w.Daemon.Engine
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := w.Client.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	if eng.StatsRounds() < 1 {
		t.Fatalf("the first answer came before the sampler's first round")
	}
	time.Sleep(engine.StatsIdle + 2*engine.StatsInterval)
	stopped := eng.StatsRounds()
	time.Sleep(2 * engine.StatsInterval)
	if r := eng.StatsRounds(); r != stopped {
		t.Fatalf("the sampler ran %d more rounds %s after the last ask", r-stopped, engine.StatsIdle+2*engine.StatsInterval)
	}
	// And starts again at the next ask.
	if _, err := w.Client.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	if r := eng.StatsRounds(); r < stopped+1 || r > stopped+2 {
		t.Fatalf("after the next ask the sampler ran %d rounds, want 1", r-stopped)
	}
}
