package ui

import (
	"context"
	"fmt"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/clank-dev/clank/api"
)

var (
	keyDown = tea.KeyPressMsg{Code: 'j', Text: "j"}
	keyUp   = tea.KeyPressMsg{Code: 'k', Text: "k"}
)

// press handles a key as the program would, and runs the page fetches it
// asks for (not the ticks it arms: they sleep).
func press(m *Model, k tea.KeyPressMsg) {
	cmd := m.update(k)
	m.afterUpdate()
	settle(m, cmd)
}

// smallPages shows a long history with small pages, so the window moves often.
func smallPages(t *testing.T, rows, pageSize int) *Model {
	t.Helper()
	m, _ := benchModel(t, rows)
	m.c.opts.PageSize = pageSize
	settle(m, m.deps.open("big"))
	return m
}

func TestScrollingVisitsEveryDeploymentOnceInOrder(t *testing.T) {
	const rows, page = 1000, 50
	m := smallPages(t, rows, page)
	check := func(want int) {
		t.Helper()
		if got := m.deps.selectedNumber(); got != want {
			t.Fatalf("selected #%d, want #%d", got, want)
		}
		if n := len(m.deps.rows); n > windowPages*page {
			t.Fatalf("window holds %d rows, more than %d", n, windowPages*page)
		}
	}
	check(rows)
	for want := rows - 1; want >= 1; want-- {
		press(m, keyDown)
		check(want)
	}
	press(m, keyDown) // at the oldest: stays
	check(1)
	for want := 2; want <= rows; want++ {
		press(m, keyUp)
		check(want)
	}
}

func TestJumpingToTheEnds(t *testing.T) {
	m := smallPages(t, 100_000, 200)
	press(m, tea.KeyPressMsg{Code: 'G', Text: "G"})
	if got := m.deps.selectedNumber(); got != 1 {
		t.Fatalf("G selected #%d, want #1", got)
	}
	press(m, keyUp)
	if got := m.deps.selectedNumber(); got != 2 {
		t.Fatalf("up from #1 selected #%d", got)
	}
	press(m, tea.KeyPressMsg{Code: 'g', Text: "g"})
	if got := m.deps.selectedNumber(); got != 100_000 {
		t.Fatalf("g selected #%d, want #100000", got)
	}
}

func TestLiveChangesApplyInPlace(t *testing.T) {
	m, b := benchModel(t, 100_000)
	settle(m, m.deps.open("big"))
	reads := b.DeploymentsCalls.Load()
	press(m, keyDown) // select #99999
	send := func(d api.Deployment) {
		m.Update(eventsMsg{gen: m.live.gen, events: []api.Event{{Type: "deployment", Service: d.Service,
			DeploymentID: d.ID, Status: d.Status, Deployment: &d}}})
	}

	d := m.deps.rows[3]
	d.Status = "DRAINING"
	send(d)
	if got := m.deps.rows[3].Status; got != "DRAINING" {
		t.Fatalf("row #%d status %s, want DRAINING", d.Number, got)
	}
	if !strings.Contains(ansi.Strip(m.View().Content), "DRAINING") {
		t.Fatal("the change is not on screen")
	}

	// Far outside the window: nothing to draw, nothing fetched.
	far := d
	far.Number, far.ID = 10, "big-10"
	send(far)

	// A new deployment goes on top; the selection stays on #99999.
	nd := d
	nd.Number, nd.ID, nd.Status = 100_001, "big-100001", "DEPLOYING"
	send(nd)
	if m.deps.rows[0].Number != 100_001 {
		t.Fatalf("top row #%d, want the new #100001", m.deps.rows[0].Number)
	}
	if got := m.deps.selectedNumber(); got != 99_999 {
		t.Fatalf("selection moved to #%d", got)
	}
	if got := b.DeploymentsCalls.Load(); got != reads {
		t.Fatalf("live changes fetched %d pages", got-reads)
	}
	if r := m.services.find("big"); r.status() != "DEPLOYING" {
		t.Fatalf("service shows %s, want the deployment in progress", r.status())
	}
}

// Every line of every screen fills the terminal's width exactly: no wrap, no
// ragged edge, at any size.
func TestEveryLineFillsTheWidth(t *testing.T) {
	for _, w := range []int{40, 60, 80, 100, 119, 120, 160, 200, 240} {
		for _, h := range []int{10, 24, 48} {
			t.Run(fmt.Sprintf("%dx%d", w, h), func(t *testing.T) {
				m, _ := benchModel(t, 1000)
				m.Update(tea.WindowSizeMsg{Width: w, Height: h})
				settle(m, m.deps.open("big"))
				fills := func(what string) {
					t.Helper()
					lines := strings.Split(m.View().Content, "\n")
					if len(lines) != h {
						t.Fatalf("%s: %d lines, want %d", what, len(lines), h)
					}
					for i, l := range lines {
						// A line may stop short by blanks in no style
						// (trimBlank): the renderer's cleared screen.
						if got := ansi.StringWidth(l); got > w || got < w && !sameOnScreen(l, l+spaces(w-got), w) {
							t.Fatalf("%s: line %d is %d cells wide, want %d: %q", what, i, got, w, ansi.Strip(l))
						}
					}
				}
				for _, focus := range []pane{paneServices, paneRight} {
					m.focus = focus
					fills("the deployments")
				}
				// The rollback modal over it, with the engine's diff (the
				// fake plans with engine.Diff) of a long history's change.
				m.deps.cursor = 1
				m.Update(m.act("rollback")())
				if m.modal == nil || m.modal.step != stepConfirm || len(m.modal.plan.Changes) == 0 {
					t.Fatalf("the modal did not open on a plan with changes: %+v", m.modal)
				}
				fills("the modal")
			})
		}
	}
}

func TestFilterKeepsMatchingDeployments(t *testing.T) {
	m := smallPages(t, 1000, 200)
	m.deps.setFilter("#99")
	for i := 0; i < m.deps.len(); i++ {
		if n := m.deps.at(i).Number; !strings.Contains(fmt.Sprint(n), "99") {
			t.Fatalf("#%d does not match the filter", n)
		}
	}
	if m.deps.len() == 0 {
		t.Fatal("nothing matched")
	}
	m.deps.setFilter("")
	if m.deps.len() != len(m.deps.rows) {
		t.Fatal("clearing the filter did not bring the rows back")
	}
}

func TestQuitEndsTheSubscription(t *testing.T) {
	m, b := benchModel(t, 10)
	msg := m.live.start()().(subscribedMsg)
	m.Update(msg)
	if b.Subscribers() != 1 {
		t.Fatalf("%d subscribers, want 1", b.Subscribers())
	}
	press(m, tea.KeyPressMsg{Code: 'q', Text: "q"})
	if err := m.c.ctx.Err(); err != context.Canceled {
		t.Fatalf("after q the dashboard's context is %v", err)
	}
	// The fake closes the channel once the context ends.
	if _, ok := <-msg.ch; ok {
		t.Fatal("the event channel is still open")
	}
}

// A change that happens while a page is on its way is not lost when the
// page, read before the change, arrives.
func TestChangesDuringALoadSurviveIt(t *testing.T) {
	m, _ := benchModel(t, 1000)
	cmd := m.deps.open("big")
	d := api.Deployment{ID: "big-999", Number: 999, Service: "big", Status: "DRAINING", Image: "x"}
	nd := api.Deployment{ID: "big-1001", Number: 1001, Service: "big", Status: "DEPLOYING", Image: "y"}
	nd2 := api.Deployment{ID: "big-1002", Number: 1002, Service: "big", Status: "DEPLOYING", Image: "z"}
	m.Update(eventsMsg{gen: m.live.gen, events: []api.Event{
		{Type: "deployment", Service: "big", Deployment: &nd2},
		{Type: "deployment", Service: "big", Deployment: &d},
		{Type: "deployment", Service: "big", Deployment: &nd},
	}})
	settle(m, cmd)
	if got := []int{m.deps.rows[0].Number, m.deps.rows[1].Number, m.deps.rows[2].Number}; got[0] != 1002 || got[1] != 1001 || got[2] != 1000 {
		t.Fatalf("top rows %v, want 1002 1001 1000", got)
	}
	if i, ok := m.deps.search(999); !ok || m.deps.rows[i].Status != "DRAINING" {
		t.Fatalf("#999 lost its live status: %+v", m.deps.rows[i])
	}
}
