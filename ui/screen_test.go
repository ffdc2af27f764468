package ui_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/fakebackend"
)

// recorder wraps the dashboard so a test can read what the program last drew,
// from inside the program's own goroutine (no race with the test's).
type recorder struct {
	*ui.Model
	mu     sync.Mutex
	styled string
}

func (r *recorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := r.Model.Update(msg)
	content := r.Model.View().Content
	r.mu.Lock()
	r.styled = content
	r.mu.Unlock()
	return r, cmd
}

func (r *recorder) last() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.styled
}

// screen is a running dashboard driven by keys, as a user would.
type screen struct {
	t   *testing.T
	tm  *teatest.TestModel
	rec *recorder
	b   *fakebackend.Backend
}

// open runs the dashboard at a size with the ANSI256 colour profile and waits
// for the services to show.
func open(t *testing.T, b *fakebackend.Backend, role ui.Role, w, h int) *screen {
	t.Helper()
	opts := options(t, role)
	rec := &recorder{Model: ui.New(b, opts)}
	tm := teatest.NewTestModel(t, rec, teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(tea.WithColorProfile(opts.ColorProfile)))
	s := &screen{t: t, tm: tm, rec: rec, b: b}
	t.Cleanup(func() {
		_ = tm.Quit()
		tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	})
	s.waitFor("worker")
	return s
}

// press sends keys by name: "enter", "esc", "tab", or a character.
func (s *screen) press(keys ...string) {
	for _, k := range keys {
		switch k {
		case "enter":
			s.tm.Send(tea.KeyPressMsg{Code: tea.KeyEnter})
		case "esc":
			s.tm.Send(tea.KeyPressMsg{Code: tea.KeyEscape})
		case "tab":
			s.tm.Send(tea.KeyPressMsg{Code: tea.KeyTab})
		case "down":
			s.tm.Send(tea.KeyPressMsg{Code: tea.KeyDown})
		default:
			r := []rune(k)[0]
			s.tm.Send(tea.KeyPressMsg{Code: r, Text: k})
		}
	}
}

// plain is the last frame without styles.
func (s *screen) plain() string { return ansi.Strip(s.rec.last()) }

// waitFor waits until the screen shows all of the texts.
func (s *screen) waitFor(texts ...string) {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		frame := s.plain()
		missing := ""
		for _, want := range texts {
			if !strings.Contains(frame, want) {
				missing = want
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("screen never showed %q; last frame:\n%s", missing, frame)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// never checks that the screen does not show text now.
func (s *screen) never(text string) {
	s.t.Helper()
	if frame := s.plain(); strings.Contains(frame, text) {
		s.t.Fatalf("screen shows %q:\n%s", text, frame)
	}
}

// golden compares the last frame, in the terminal's colour profile, with
// testdata/<test>.golden (go test -update rewrites it).
func (s *screen) golden() {
	s.t.Helper()
	var out bytes.Buffer
	w := &colorprofile.Writer{Forward: &out, Profile: colorprofile.ANSI256}
	if _, err := w.WriteString(s.rec.last()); err != nil {
		s.t.Fatal(err)
	}
	teatest.RequireEqualOutput(s.t, out.Bytes())
}
