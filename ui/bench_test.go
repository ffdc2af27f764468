package ui

import (
	"context"
	"fmt"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	uv "github.com/charmbracelet/ultraviolet"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/ui/internal/fakebackend"
)

// The benchmarks drive the model as Bubble Tea does (Update, then View) at
// 200x48, with page fetches answered synchronously by the in-memory fake.

const benchW, benchH = 200, 48

// benchModel is a dashboard showing a service with rows deployments.
func benchModel(tb testing.TB, rows int) (*Model, *fakebackend.Backend) {
	tb.Helper()
	b := fakebackend.New()
	b.AddService(api.Service{Name: "big", Image: "registry.local/big:v1", Port: 8080})
	b.AddHistory("big", rows)
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	m := New(b, Options{Context: ctx, Role: RoleAdmin, Actor: "bench", Width: benchW, Height: benchH,
		Now: func() time.Time { return fakebackend.Epoch.Add(time.Duration(rows+60) * time.Minute) }})
	services, _ := b.Services(ctx)
	m.Update(servicesMsg{services: services})
	m.focus = paneRight
	return m, b
}

// settle runs the page fetches a command chain asks for, as the program
// would (the other commands of a batch are dropped; the clock's and the
// spinner's ticks, which sleep, are never asked for).
func settle(m *Model, cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case pageMsg:
		next := m.update(msg)
		m.afterUpdate() // its ticks are not waited for
		settle(m, next)
	case tea.BatchMsg:
		for _, c := range msg {
			settle(m, c)
		}
	}
}

func BenchmarkOpenService(b *testing.B) {
	for _, rows := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			m, _ := benchModel(b, rows)
			b.ReportAllocs()
			for b.Loop() {
				settle(m, m.deps.open("big"))
				_ = m.View()
			}
		})
	}
}

func BenchmarkRenderFrame(b *testing.B) {
	for _, rows := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			m, _ := benchModel(b, rows)
			settle(m, m.deps.open("big"))
			b.ReportAllocs()
			for b.Loop() {
				_ = m.View()
			}
		})
	}
}

// BenchmarkScroll moves the cursor down one row a frame through the history;
// pages are fetched as it nears the window's edge.
func BenchmarkScroll(b *testing.B) {
	for _, rows := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			m, _ := benchModel(b, rows)
			settle(m, m.deps.open("big"))
			down := tea.KeyPressMsg{Code: 'j', Text: "j"}
			b.ReportAllocs()
			for b.Loop() {
				if m.deps.cursor == m.deps.len()-1 && !m.deps.hasOlder {
					settle(m, m.deps.open("big"))
				}
				cmd := m.update(down)
				m.afterUpdate()
				settle(m, cmd)
				_ = m.View()
			}
		})
	}
}

// BenchmarkStatusChange applies one live status change of a visible row and
// draws the frame; "+draw" also parses the frame into a cell buffer, as the
// renderer does before diffing it against the terminal.
func BenchmarkStatusChange(b *testing.B) {
	for _, draw := range []bool{false, true} {
		name := "update+view"
		if draw {
			name += "+draw"
		}
		b.Run(name, func(b *testing.B) {
			m, _ := benchModel(b, 100_000)
			settle(m, m.deps.open("big"))
			d := m.deps.rows[3]
			scr := uv.NewScreenBuffer(benchW, benchH)
			statuses := []string{"DRAINING", "INACTIVE"}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				d.Status = statuses[i%2]
				i++
				ev := eventsMsg{gen: m.live.gen, events: []api.Event{{Type: "deployment", Service: "big",
					DeploymentID: d.ID, Status: d.Status, Deployment: &d}}}
				m.Update(ev)
				v := m.View()
				if draw {
					uv.NewStyledString(v.Content).Draw(scr, scr.Bounds())
				}
			}
		})
	}
}
