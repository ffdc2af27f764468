package ui_test

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/clank-dev/clank/api"
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
