package ui

import (
	"image/color"
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// The palette reads on dark and light terminals alike; Bubble Tea downsamples
// it to the terminal's colour profile.
var (
	colAccent  = lipgloss.Color("#7D56F4")
	colOnColor = lipgloss.Color("#F5F5F5")
	colDim     = lipgloss.Color("#8A8A8A")
	colGreen   = lipgloss.Color("#3FB950")
	colYellow  = lipgloss.Color("#D29922")
	colRed     = lipgloss.Color("#F85149")
	colCyan    = lipgloss.Color("#39C5CF")
	colBlue    = lipgloss.Color("#58A6FF")
	colSelBg   = lipgloss.Color("#3B3F6B")
)

// Styles is every style of the dashboard. Tables are drawn on a hot path (one
// frame per status change), so their cells use paints: the same styles turned
// once into SGR sequences.
type Styles struct {
	Logo, HeaderText, HeaderOK, HeaderBad, Role lipgloss.Style

	PaneTitle, PaneTitleFocused, ColumnHeader, Separator lipgloss.Style
	Row, SelectedRow, Dim, Badge, Frozen, Next           lipgloss.Style
	Spark, Spark5xx                                      lipgloss.Style
	Status                                               map[string]lipgloss.Style

	Label, Masked, Error, Flash lipgloss.Style

	Modal, ModalTitle, Button, ButtonFocused lipgloss.Style
	Added, Removed, Changed                  lipgloss.Style

	Help help.Styles

	paints paints
}

// DefaultStyles returns the dashboard's styles.
func DefaultStyles() *Styles {
	st := lipgloss.NewStyle
	s := &Styles{
		Logo:       st().Bold(true).Foreground(colOnColor).Background(colAccent).Padding(0, 1),
		HeaderText: st().Foreground(colDim),
		HeaderOK:   st().Foreground(colGreen),
		HeaderBad:  st().Foreground(colRed).Bold(true),
		Role:       st().Bold(true).Foreground(colAccent),

		PaneTitle:        st().Bold(true).Foreground(colDim),
		PaneTitleFocused: st().Bold(true).Foreground(colAccent),
		ColumnHeader:     st().Foreground(colDim).Underline(true),
		Separator:        st().Foreground(colDim),
		Row:              st(),
		SelectedRow:      st().Foreground(colOnColor).Background(colSelBg),
		Dim:              st().Foreground(colDim),
		Badge:            st().Foreground(colGreen).Bold(true),
		Frozen:           st().Foreground(colCyan).Bold(true),
		Next:             st().Foreground(colBlue),
		Spark:            st().Foreground(colGreen),
		Spark5xx:         st().Foreground(colRed).Bold(true),
		Status: map[string]lipgloss.Style{
			"ACTIVE":          st().Foreground(colGreen).Bold(true),
			"DEPLOYING":       st().Foreground(colYellow),
			"HEALTH_CHECKING": st().Foreground(colYellow),
			"DRAINING":        st().Foreground(colCyan),
			"INACTIVE":        st().Foreground(colDim),
			"FAILED":          st().Foreground(colRed).Bold(true),
			"CANCELLED":       st().Foreground(colDim),
			// An ACTIVE deployment whose containers are not healthy.
			runtimeUnhealthy:  st().Foreground(colYellow).Bold(true),
			runtimeCrashed:    st().Foreground(colRed).Bold(true),
			runtimeRestarting: st().Foreground(colYellow).Bold(true),
		},

		Label:  st().Foreground(colDim),
		Masked: st().Foreground(colDim),
		Error:  st().Foreground(colRed),
		Flash:  st().Foreground(colBlue),

		Modal:      st().Border(lipgloss.RoundedBorder()).BorderForeground(colAccent).Padding(0, 1),
		ModalTitle: st().Bold(true).Foreground(colAccent),
		// The unfocused button reads as a button that may be chosen, not
		// as a disabled one: in the accent colour, bold.
		Button:        st().Foreground(colAccent).Bold(true).Padding(0, 1),
		ButtonFocused: st().Bold(true).Foreground(colOnColor).Background(colAccent).Padding(0, 1),
		Added:         st().Foreground(colGreen),
		Removed:       st().Foreground(colRed),
		Changed:       st().Foreground(colYellow),

		Help: help.DefaultDarkStyles(),
	}
	s.paints = newPaints(s)
	return s
}

// StatusStyle is the style of a deployment status (unknown ones are plain).
func (s *Styles) StatusStyle(status string) lipgloss.Style {
	if st, ok := s.Status[status]; ok {
		return st
	}
	return s.Row
}

// paneTitle is a pane's title line text; the focused pane is marked in
// colour and with an arrow, so focus shows without colour too.
func (s *Styles) paneTitle(text string, focused bool) string {
	if focused {
		return s.PaneTitleFocused.Render("▸ " + text)
	}
	return s.PaneTitle.Render("  " + text)
}

// paint is a style reduced to the SGR sequence that turns it on.
type paint string

func newPaint(s lipgloss.Style) paint {
	var a ansi.Style
	if c := s.GetForeground(); isColor(c) {
		a = a.ForegroundColor(c)
	}
	if c := s.GetBackground(); isColor(c) {
		a = a.BackgroundColor(c)
	}
	if s.GetBold() {
		a = a.Bold()
	}
	if s.GetUnderline() {
		a = a.Underline(true)
	}
	if len(a) == 0 {
		return ""
	}
	return paint(a.String())
}

func isColor(c color.Color) bool {
	if c == nil {
		return false
	}
	_, none := c.(lipgloss.NoColor)
	return !none
}

// put writes text in this paint and resets after it.
func (p paint) put(b *strings.Builder, text string) {
	if p == "" {
		b.WriteString(text)
		return
	}
	b.WriteString(string(p))
	b.WriteString(text)
	b.WriteString("\x1b[m")
}

// cellPaint is a cell's paint on a plain row and on the selected row.
type cellPaint struct{ plain, selected paint }

func (c cellPaint) pick(selected bool) paint {
	if selected {
		return c.selected
	}
	return c.plain
}

type paints struct {
	text, dim, badge, header, frozen cellPaint
	next, spark, spark5xx            cellPaint
	status                           map[string]cellPaint
	// separator is the divider between the panes, drawn.
	separator string
}

func newPaints(s *Styles) paints {
	// A selected cell keeps its colour on the selection's background; plain
	// text takes the selection's colour.
	on := func(st lipgloss.Style) cellPaint {
		sel := st.Background(s.SelectedRow.GetBackground())
		if !isColor(st.GetForeground()) {
			sel = sel.Foreground(s.SelectedRow.GetForeground())
		}
		return cellPaint{plain: newPaint(st), selected: newPaint(sel)}
	}
	p := paints{
		text:     on(s.Row),
		dim:      on(s.Dim),
		badge:    on(s.Badge),
		header:   on(s.ColumnHeader),
		frozen:   on(s.Frozen),
		next:     on(s.Next),
		spark:    on(s.Spark),
		spark5xx: on(s.Spark5xx),
		status:   make(map[string]cellPaint, len(s.Status)),

		separator: s.Separator.Render("│"),
	}
	for name, st := range s.Status {
		p.status[name] = on(st)
	}
	return p
}

func (p *paints) statusOf(status string) cellPaint {
	if c, ok := p.status[status]; ok {
		return c
	}
	return p.text
}
