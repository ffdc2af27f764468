package ui

import (
	tea "charm.land/bubbletea/v2"
)

// The mouse: a click selects the row under it (services list, deployments
// table) and focuses its pane; the wheel scrolls the pane under the pointer
// (its cursor in a table, the text in a detail or a log). The dashboard
// asks for clicks and the wheel only (cell motion); while it has the mouse
// the terminal's own selection wants shift held (option in iTerm2), which
// the help says.

// wheelStep is how many rows, or lines, one notch of the wheel moves.
const wheelStep = 3

// bodyTop is the screen line the panes start on.
func (m *Model) bodyTop() int { return 1 + m.bannerHeight() }

// paneAt says which side is drawn at column x.
func (m *Model) paneAt(x int) pane {
	if !m.wide() {
		return m.focus
	}
	if x < m.leftWidth {
		return paneServices
	}
	return paneRight
}

func (m *Model) handleMouse(msg tea.MouseMsg) tea.Cmd {
	if m.modal != nil || m.showHelp || m.filtering || m.commanding {
		return nil
	}
	mouse := msg.Mouse()
	if m.wide() && mouse.X == m.leftWidth {
		return nil // the divider
	}
	row := mouse.Y - m.bodyTop() // line within the panes
	if row < 0 || row >= m.bodyHeight {
		return nil
	}
	side := m.paneAt(mouse.X)
	switch msg := msg.(type) {
	case tea.MouseClickMsg:
		if msg.Button != tea.MouseLeft {
			return nil
		}
		m.banner = nil
		m.flash = ""
		return m.click(side, row)
	case tea.MouseWheelMsg:
		switch msg.Button {
		case tea.MouseWheelUp:
			return m.wheel(side, -wheelStep)
		case tea.MouseWheelDown:
			return m.wheel(side, wheelStep)
		}
	}
	return nil
}

// click selects the row at line row of side's pane (the first two lines
// are the title and the column header).
func (m *Model) click(side pane, row int) tea.Cmd {
	if side == paneServices {
		l := &m.services
		before := l.selectedName()
		m.focus = paneServices
		if i := l.top + row - 2; row >= 2 && i < len(l.shown) {
			l.cursor = i
			l.clamp()
		}
		return m.followSelection(before)
	}
	m.focus = paneRight
	if m.right != showDeployments {
		return nil
	}
	t := &m.deps
	if i := t.top + row - 2; row >= 2 && i < t.len() {
		t.cursor = i
		t.clamp()
		return t.maybeFetch()
	}
	return nil
}

// wheel scrolls side's pane by delta rows.
func (m *Model) wheel(side pane, delta int) tea.Cmd {
	if side == paneServices {
		l := &m.services
		before := l.selectedName()
		l.move(delta)
		return m.followSelection(before)
	}
	switch m.right {
	case showDetail:
		if delta < 0 {
			m.detail.vp.ScrollUp(-delta)
		} else {
			m.detail.vp.ScrollDown(delta)
		}
		return nil
	case showLogs:
		m.logs.scrollBy(delta)
		return nil
	}
	return m.deps.move(delta)
}
