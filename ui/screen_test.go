package ui_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/clank-dev/clank/ui"
	"github.com/clank-dev/clank/ui/internal/realdaemon"
)

// waitWithin bounds every wait for the screen: generous, for a loaded
// 2-core machine under -race; a wait may span a whole deployment.
const waitWithin = realdaemon.DeployWithin

// recorder wraps the dashboard so a test can read what the program last drew,
// from inside the program's own goroutine (no race with the test's), and how
// many keys it has handled.
type recorder struct {
	*ui.Model
	mu     sync.Mutex
	styled string
	keys   int
}

func (r *recorder) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	_, cmd := r.Model.Update(msg)
	content := r.Model.View().Content
	r.mu.Lock()
	r.styled = content
	if _, ok := msg.(tea.KeyPressMsg); ok {
		r.keys++
	}
	r.mu.Unlock()
	return r, cmd
}

func (r *recorder) last() (frame string, keys int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.styled, r.keys
}

// screen is a running dashboard driven by keys, as a user would.
type screen struct {
	t    *testing.T
	tm   *teatest.TestModel
	rec  *recorder
	sent int // keys sent
}

// options are the dashboard's options in tests: the goldens' clock (every
// age reads 3h), a fixed host name, a colour profile, and a context that
// ends with the test.
func options(t testing.TB, role ui.Role) ui.Options {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ui.Options{Context: ctx, Role: role, Actor: "tester", Host: "testhost", Now: realdaemon.Clock,
		ColorProfile: colorprofile.ANSI256}
}

// open runs the dashboard on b at a size with the ANSI256 colour profile
// and waits for the services and the header's daemon status to show.
func open(t *testing.T, b ui.Backend, role ui.Role, w, h int) *screen {
	t.Helper()
	s := openWith(t, b, options(t, role), w, h)
	s.waitFor(realdaemon.Service, "ACTIVE", "docker up")
	return s
}

// openWith runs the dashboard on b with the options given, and waits for
// nothing.
func openWith(t *testing.T, b ui.Backend, opts ui.Options, w, h int) *screen {
	t.Helper()
	rec := &recorder{Model: ui.New(b, opts)}
	tm := teatest.NewTestModel(t, rec, teatest.WithInitialTermSize(w, h),
		teatest.WithProgramOptions(tea.WithColorProfile(opts.ColorProfile)))
	s := &screen{t: t, tm: tm, rec: rec}
	t.Cleanup(func() {
		_ = tm.Quit()
		tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
	})
	return s
}

// press sends keys by name: "enter", "esc", "tab", "down", or a character.
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
		s.sent++
	}
}

// handled waits until the dashboard has handled every key sent: what a key
// did to the screen is then in the last frame. (A backend call a key started
// may still be on its way.)
func (s *screen) handled() string {
	s.t.Helper()
	deadline := time.Now().Add(waitWithin)
	for {
		frame, keys := s.rec.last()
		if keys >= s.sent {
			return ansi.Strip(frame)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the dashboard handled %d of %d keys within %s", keys, s.sent, waitWithin)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// plain is the last frame without styles.
func (s *screen) plain() string {
	frame, _ := s.rec.last()
	return ansi.Strip(frame)
}

// squash drops blanks and line breaks.
func squash(s string) string { return strings.Join(strings.Fields(s), "") }

// waitFor waits until the screen shows all of the texts.
func (s *screen) waitFor(texts ...string) {
	s.t.Helper()
	s.waitUntil(func(frame string) string {
		for _, want := range texts {
			if !strings.Contains(frame, want) {
				return "never showed " + want
			}
		}
		return ""
	})
}

// waitGone waits until the screen no longer shows text.
func (s *screen) waitGone(text string) {
	s.t.Helper()
	s.waitUntil(func(frame string) string {
		if strings.Contains(frame, text) {
			return "still shows " + text
		}
		return ""
	})
}

// waitDeployments waits until service's deployments are focused and their
// rows have come: a key pressed before would act on no row. Rows are the
// only sign: "#1" may be the services list's (its ACTIVE number), and the
// table says "loading…" from the moment it asks until they come.
func (s *screen) waitDeployments(service string) {
	s.t.Helper()
	s.waitUntil(func(frame string) string {
		switch {
		case !strings.Contains(frame, "▸ "+service+" deployments"):
			return "never showed ▸ " + service + " deployments"
		case strings.Contains(frame, "loading…"):
			return "still shows loading…"
		}
		return ""
	})
}

// waitUntil polls the frame until check finds nothing missing ("").
func (s *screen) waitUntil(check func(frame string) string) {
	s.t.Helper()
	deadline := time.Now().Add(waitWithin)
	for {
		frame := s.plain()
		missing := check(frame)
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("within %s the screen %s; last frame:\n%s", waitWithin, missing, frame)
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

// golden compares the last frame, in the terminal's colour profile and
// masked (realdaemon.Mask: what changes from run to run), with
// testdata/<test>.golden (go test -update rewrites it).
func (s *screen) golden() {
	s.t.Helper()
	var out bytes.Buffer
	w := &colorprofile.Writer{Forward: &out, Profile: colorprofile.ANSI256}
	frame, _ := s.rec.last()
	if _, err := w.WriteString(realdaemon.Mask(frame)); err != nil {
		s.t.Fatal(err)
	}
	teatest.RequireEqualOutput(s.t, out.Bytes())
}

// lineWith is the frame's first line that holds every one of parts.
func lineWith(frame string, parts ...string) string {
	for line := range strings.Lines(frame) {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return line
		}
	}
	return ""
}

// paneLine is lineWith in the right-hand pane when the panes are side by
// side (the part of each line after the divider), else in the whole line.
func paneLine(frame string, parts ...string) string {
	var right []string
	for line := range strings.Lines(frame) {
		if i := strings.LastIndex(line, "│"); i >= 0 {
			line = line[i+len("│"):]
		}
		right = append(right, line)
	}
	return lineWith(strings.Join(right, ""), parts...)
}

// leftLine is lineWith in the left-hand pane (the services) when the panes
// are side by side: the part of each line before the divider.
func leftLine(frame string, parts ...string) string {
	var left []string
	for line := range strings.Lines(frame) {
		if i := strings.Index(line, "│"); i >= 0 {
			line = line[:i] + "\n"
		}
		left = append(left, line)
	}
	return lineWith(strings.Join(left, ""), parts...)
}

// modal is the text inside the modal's box on the last frame, its lines
// joined: a reason the modal wraps over lines reads whole (compare squashed,
// as a long word may be cut anywhere). "" when no modal is open.
func (s *screen) modal() string {
	var out []string
	from, to := -1, -1
	for line := range strings.Lines(s.plain()) {
		r := []rune(strings.TrimRight(line, "\n"))
		if from < 0 {
			if i := strings.IndexRune(line, '╭'); i >= 0 {
				from = len([]rune(line[:i]))
				to = from + strings.Count(line[i:], "─") + 1
			}
			continue
		}
		if from < len(r) && r[from] == '╰' {
			break
		}
		if to <= len(r) {
			out = append(out, strings.TrimSpace(string(r[from+1:to])))
		}
	}
	return strings.Join(out, " ")
}

// waitForModal waits until the modal shows text (squashed: blanks and line
// breaks do not count).
func (s *screen) waitForModal(text string) {
	s.t.Helper()
	s.waitUntil(func(string) string {
		if !strings.Contains(squash(s.modal()), squash(text)) {
			return "never showed in the modal: " + text + "\nmodal: " + s.modal()
		}
		return ""
	})
}
