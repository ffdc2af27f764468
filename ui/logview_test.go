package ui_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/fakebackend"
)

// The log viewer's screens are pure rendering of the lines a stream gives:
// they are drawn here from the fake backend's log, whose lines and times
// are the same on every run (the kept log of a real daemon's removed
// container is read in keptlogs_test.go).

// openLogs opens the dashboard at a size on a fake web service whose log
// holds lines, on a clock fixed after the fake's deployments, and opens
// web's logs.
func openLogs(t *testing.T, b *fakebackend.Backend, w, h int) *screen {
	t.Helper()
	opts := options(t, ui.RoleAdmin)
	opts.Now = func() time.Time { return fakebackend.Epoch.Add(24 * time.Hour) }
	rec := &recorder{Model: ui.New(b, opts)}
	tm := teatest.NewTestModel(t, rec, teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(tea.WithColorProfile(opts.ColorProfile)))
	s := &screen{t: t, tm: tm, rec: rec}
	t.Cleanup(func() {
		_ = tm.Quit()
		tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
	})
	s.waitFor("web", "ACTIVE", "docker up")
	s.press("l")
	s.waitFor("logs · web (active)")
	return s
}

// appLog is a log of n lines: requests, a few errors, and one line longer
// than any terminal here.
func appLog(from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		switch {
		case i == 55:
			out = append(out, "panic: "+strings.Repeat("a very long line that goes on ", 10)+"END")
		case i%9 == 4:
			out = append(out, fmt.Sprintf("request %d failed: upstream Error: connection refused", i))
		default:
			out = append(out, fmt.Sprintf("GET /items/%d 200 in %dms", i, i%13))
		}
	}
	return out
}

func logBackend() *fakebackend.Backend {
	b := fakebackend.New()
	b.AddService(api.Service{Name: "web", Image: "web:v3", Port: 8080})
	b.AddHistory("web", 3)
	b.WriteLog(appLog(0, 60)...)
	return b
}

func TestLogViewer(t *testing.T) {
	for _, size := range []struct {
		name string
		w, h int
	}{{"80x24", 80, 24}, {"200x50", 200, 50}} {
		t.Run(size.name, func(t *testing.T) {
			t.Run("following, wrapped", func(t *testing.T) {
				s := openLogs(t, logBackend(), size.w, size.h)
				s.waitFor("following · 60/60", "GET /items/59 200")
				s.golden()
			})

			t.Run("search highlights its matches", func(t *testing.T) {
				s := openLogs(t, logBackend(), size.w, size.h)
				s.waitFor("following · 60/60")
				s.press("/", "e", "r", "r", "o", "r")
				// The search line takes a row: the view still ends on the last line.
				s.waitFor("/error█", "enter search", "esc cancel", "GET /items/59 200", "following · 60/60")
				s.press("enter")
				// "error" ignores case (no capital): 7 lines hold "Error".
				s.waitFor(`search "error" · match `, "n/N match", "esc clear search")
				s.press("n")
				s.handled()
				s.golden()
				// From the top the first match is the first line that holds it;
				// N wraps to the last one, n back to the first.
				s.press("g", "/", "E", "r", "r", "o", "r", "enter")
				s.waitFor(`search "Error" · match 1/7`)
				s.press("N")
				s.waitFor(`search "Error" · match 7/7 · wrapped to the end`, "request 58 failed")
				s.press("n")
				s.waitFor(`search "Error" · match 1/7 · wrapped to the top`, "request 4 failed")
				// A capital letter makes the search match case.
				s.press("/", "E", "R", "R", "O", "R", "enter")
				s.waitFor(`search "ERROR" · no match`)
				s.press("esc")
				s.waitGone(`search "ERROR"`)
				s.waitFor("esc back")
				// ? lists the keys of the logs view.
				s.press("?")
				s.waitFor("next/previous match", "wrap on/off", "times on/off", "last line, follow")
				s.press("esc")
				s.waitGone("wrap on/off")
			})

			t.Run("paused while new lines arrive", func(t *testing.T) {
				b := logBackend()
				s := openLogs(t, b, size.w, size.h)
				s.waitFor("following · 60/60")
				s.press("k", "k", "k")
				s.waitFor("paused · ", "f follow")
				b.WriteLog(appLog(60, 12)...)
				s.waitFor("paused, 12 new lines · ")
				s.never("GET /items/71 200")
				s.golden()
				s.press("f")
				s.waitFor("following · 72/72", "GET /items/71 200")
			})

			t.Run("no wrap scrolls sideways, with times", func(t *testing.T) {
				s := openLogs(t, logBackend(), size.w, size.h)
				s.waitFor("following · 60/60")
				s.press("w", "t")
				s.waitFor("w wrap", "←/→ scroll", "t no times", "12:00:55.000 panic: a very long line")
				s.press("right")
				s.handled()
				s.waitFor("following · 60/60 · col ")
				s.golden()
			})
		})
	}
}
