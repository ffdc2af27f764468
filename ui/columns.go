package ui

import (
	"slices"
	"strings"

	"github.com/charmbracelet/x/ansi"
)

// column is one column of a table: how wide its content wants to be, how
// narrow it may get, and how early it gives way when the room is short.
type column struct {
	title string
	// want is the width the column's content takes whole; max, if larger,
	// is how far spare room may grow it.
	want, max int
	// min is how narrow the column may be cut (0: it is never cut, only
	// dropped); compact, if set, is the width of a short form (a glyph)
	// that stands in for it before it is dropped.
	min, compact int
	// prio orders who gives way: lower first. A column with keep is never
	// dropped.
	prio int
	keep bool
}

// fitColumns gives each column a width (0: dropped) so that the columns and
// the blanks between them fit width: first the compact forms stand in, then
// the columns are cut toward their min, then dropped, each step lowest prio
// first (the columns that are never dropped are cut only after that); room
// left then goes back to the cut columns, and then grows the columns toward
// max, highest prio first.
// It reports whether even that overflows (the rows are then cut).
func fitColumns(cols []column, width int) (widths []int, tight bool) {
	widths = make([]int, len(cols))
	total := -1
	for i, c := range cols {
		if c.want > 0 {
			widths[i] = c.want
			total += c.want + 1
		}
	}
	order := make([]int, len(cols))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cols[a].prio - cols[b].prio })
	for _, i := range order {
		if c := cols[i]; total > width && c.compact > 0 && c.compact < widths[i] {
			total -= widths[i] - c.compact
			widths[i] = c.compact
		}
	}
	shrink := func(keep bool) {
		for _, i := range order {
			if c := cols[i]; total > width && c.keep == keep && c.min > 0 && c.min < widths[i] && widths[i] > c.compact {
				cut := min(widths[i]-c.min, total-width)
				widths[i] -= cut
				total -= cut
			}
		}
	}
	shrink(false)
	for _, i := range order {
		if total > width && !cols[i].keep && widths[i] > 0 {
			total -= widths[i] + 1
			widths[i] = 0
		}
	}
	shrink(true) // the columns that stay are cut last
	// Room left (a dropped column freed more than was needed): the cut
	// columns get it back first, then the columns that may grow.
	for _, limit := range []func(column) int{
		func(c column) int { return c.want },
		func(c column) int { return c.max },
	} {
		for k := len(order) - 1; k >= 0 && total < width; k-- {
			i := order[k]
			grow := min(limit(cols[i])-widths[i], width-total)
			if widths[i] == cols[i].compact && widths[i] < cols[i].want && grow < cols[i].want-widths[i] {
				continue // a short form comes back whole or not at all
			}
			if widths[i] > 0 && grow > 0 {
				widths[i] += grow
				total += grow
			}
		}
	}
	return widths, total > width
}

// headerLine writes the titles of the columns shown, after the row mark.
func headerLine(st *Styles, cols []column, widths []int, width int) string {
	var b strings.Builder
	p := st.paints.header.plain
	b.WriteString(spaces(rowMarkWidth))
	first := true
	for i, c := range cols {
		if widths[i] == 0 {
			continue
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		title := c.title
		if cellWidth(title) > widths[i] {
			title = ansi.Truncate(title, widths[i], "")
		}
		p.put(&b, fit(title, widths[i]))
	}
	return fit(b.String(), width)
}

// abbrevImage fits an image reference into w cells keeping its tag (or
// digest), the part that tells deployments apart: the repository is
// abbreviated from the left ("…/sampleapp:v3"). A tag longer than the room
// is cut at its end.
func abbrevImage(ref string, w int) string {
	if w <= 0 {
		return ""
	}
	if cellWidth(ref) <= w {
		return ref
	}
	if !isPlainASCII(ref) || w < 2 {
		return fit(ref, w)
	}
	tag := strings.IndexByte(ref, '@')
	if tag < 0 {
		tag = strings.LastIndexByte(ref, ':')
		if tag < strings.LastIndexByte(ref, '/') {
			tag = -1 // a registry's port, not a tag
		}
	}
	if tag >= 0 && len(ref)-tag > w-1 {
		return fit(ref[tag:], w) // even the tag is too long: its start stays
	}
	return "…" + ref[len(ref)-(w-1):]
}
