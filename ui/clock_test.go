package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui/internal/fakebackend"
)

// fakeClock is the dashboard's clock in a test: it moves only when told.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) advance(d time.Duration) { c.now = c.now.Add(d) }

// clockModel is a dashboard at w x h on a fake clock, showing web, whose
// newest deployment (#3) was created 5 s ago.
func clockModel(t *testing.T, w, h int) (*Model, *fakeClock) {
	t.Helper()
	b := fakebackend.New()
	b.AddService(api.Service{Name: "web", Image: "registry.local/web:v1.3", Port: 8080})
	b.AddHistory("web", 3)
	clk := &fakeClock{now: fakebackend.Epoch.Add(3*time.Minute + 5*time.Second)}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := New(b, Options{Context: ctx, Role: RoleAdmin, Width: w, Height: h, Now: clk.Now})
	services, _ := b.Services(ctx)
	m.Update(servicesMsg{services: services})
	settle(m, m.deps.open("web"))
	return m, clk
}

// ticks runs the update a message makes and returns the clock tick it left
// pending, if any (the tick's command itself sleeps: it is not run here).
func ticks(m *Model, msg tea.Msg) []clockTickMsg {
	m.Update(msg)
	if m.clock.pending {
		return []clockTickMsg{{gen: m.clock.gen}}
	}
	return nil
}

func rowOf(m *Model, number string) string {
	for _, l := range strings.Split(ansi.Strip(m.View().Content), "\n") {
		if strings.Contains(l, number+" ") {
			return l
		}
	}
	return ""
}

// Ages tick with the clock, with no key and no event: one tick at a time,
// armed only while an age is on screen.
func TestAgesTickWithTheClock(t *testing.T) {
	m, clk := clockModel(t, 120, 30)
	if !strings.Contains(rowOf(m, "#3"), " 5s ") {
		t.Fatalf("#3 is 5 s old: %q", rowOf(m, "#3"))
	}
	if got := m.relativeTimesWait(); got != time.Second {
		t.Fatalf("the next change of the ages on screen in %s, want 1s", got)
	}
	tk := ticks(m, tea.WindowSizeMsg{Width: 120, Height: 30})
	if len(tk) != 1 {
		t.Fatalf("no tick armed while ages are on screen")
	}
	gen := m.clock.gen
	ticks(m, tea.WindowSizeMsg{Width: 120, Height: 30})
	if m.clock.gen != gen {
		t.Fatalf("a second tick was armed while one is pending")
	}
	for _, want := range []string{" 6s ", " 7s "} {
		clk.advance(time.Second)
		ticks(m, tk[0])
		tk = []clockTickMsg{{gen: m.clock.gen}}
		if !strings.Contains(rowOf(m, "#3"), want) {
			t.Fatalf("after a tick #3 shows %q, want %q", rowOf(m, "#3"), want)
		}
	}
	// Past a minute the ages change once a minute: the tick waits so long.
	clk.advance(time.Minute)
	if got := m.relativeTimesWait(); got <= time.Second || got > time.Minute {
		t.Fatalf("with every age in minutes the next change is in %s", got)
	}
	// An old tick (a stale generation) does not disarm the pending one.
	if m.clock.fired(clockTickMsg{gen: m.clock.gen - 1}) {
		t.Fatalf("a stale tick was taken for the pending one")
	}
}

// Nothing on screen shows a relative time: no tick is armed, and the one
// pending is not armed again when it fires.
func TestNoTickWithoutAnAgeOnScreen(t *testing.T) {
	m, _ := clockModel(t, 80, 24) // one pane at a time: the services list
	if m.focus != paneServices {
		t.Fatal("the dashboard starts on the services")
	}
	if got := m.relativeTimesWait(); got != 0 {
		t.Fatalf("the services list alone shows no age, yet a change is due in %s", got)
	}
	m.clock = clock{}
	ticks(m, tea.WindowSizeMsg{Width: 80, Height: 24})
	if m.clock.pending {
		t.Fatal("a tick was armed with no age on screen")
	}
	// Open the deployments: ages show, a tick is armed; back: it fires and
	// is not armed again.
	press(m, tea.KeyPressMsg{Code: tea.KeyEnter})
	if !m.clock.pending {
		t.Fatal("no tick armed once the deployments show")
	}
	press(m, tea.KeyPressMsg{Code: tea.KeyEscape})
	ticks(m, clockTickMsg{gen: m.clock.gen})
	if m.clock.pending {
		t.Fatal("the tick was armed again with no age on screen")
	}
}

func TestNextChange(t *testing.T) {
	for _, c := range []struct{ d, want time.Duration }{
		{5*time.Second + 300*time.Millisecond, 700 * time.Millisecond},
		{90 * time.Second, 30 * time.Second},
		{3*time.Hour + 20*time.Minute, 40 * time.Minute},
		{-2 * time.Second, 2 * time.Second},
	} {
		if got := nextChange(c.d); got != c.want {
			t.Errorf("nextChange(%s) = %s, want %s", c.d, got, c.want)
		}
	}
	// A countdown of 4m30s shows "4m" until 3m59s: it changes in 30 s.
	if got := countdownChange(4*time.Minute + 30*time.Second); got != 30*time.Second {
		t.Errorf("countdownChange(4m30s) = %s", got)
	}
	now := fakebackend.Epoch
	if got := warmText(now.Add(4*time.Minute+30*time.Second), now); got != "warm, 4m left" {
		t.Errorf("warmText = %q", got)
	}
}
