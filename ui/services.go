package ui

import (
	"strconv"
	"strings"

	"github.com/clank-dev/clank/api"
)

// serviceRow is a service and the live state of its deployments.
type serviceRow struct {
	api.Service
	// progress is the status of the service's deployment in progress, and
	// progressID its id ("" when the progress came from the first load).
	progress, progressID string
}

// status is what the list shows: the deployment in progress, else the
// service's summary.
func (r *serviceRow) status() string {
	if r.progress != "" {
		return r.progress
	}
	if r.Status == "" {
		return "NONE"
	}
	return r.Status
}

// servicesList is the list of services with their live status.
type servicesList struct {
	c      *common
	rows   []serviceRow
	shown  []int // indices of rows that match the filter
	filter string
	loaded bool
	err    error

	cursor, top   int
	width, height int
}

func newServicesList(c *common) servicesList { return servicesList{c: c} }

// setServices replaces the list, keeping the selection on the same service.
func (l *servicesList) setServices(services []api.Service) {
	keep := l.selectedName()
	old := make(map[string]serviceRow, len(l.rows))
	for _, r := range l.rows {
		old[r.Name] = r
	}
	l.rows = make([]serviceRow, len(services))
	for i, s := range services {
		r := serviceRow{Service: s}
		if inProgress(s.Status) {
			r.progress = s.Status
			if prev, ok := old[s.Name]; ok && prev.progress == s.Status {
				r.progressID = prev.progressID
			}
		}
		l.rows[i] = r
	}
	l.loaded = true
	l.refilter(keep)
}

// applyDeployment folds a deployment's new status into its service's row.
// It reports whether the row changed, and whether the service is unknown.
func (l *servicesList) applyDeployment(d *api.Deployment) (changed, unknown bool) {
	r := l.find(d.Service)
	if r == nil {
		return false, true
	}
	before := r.status()
	switch {
	case inProgress(d.Status):
		r.progress, r.progressID = d.Status, d.ID
	case d.Status == "ACTIVE":
		id := d.ID
		r.ActiveDeploymentID = &id
		r.Status = "ACTIVE"
		if r.progressID == d.ID || r.progressID == "" {
			r.progress, r.progressID = "", ""
		}
	case d.Status == "FAILED" || d.Status == "CANCELLED":
		if r.progressID == d.ID || r.progressID == "" {
			r.progress, r.progressID = "", ""
		}
	}
	return r.status() != before, false
}

func (l *servicesList) find(name string) *serviceRow {
	for i := range l.rows {
		if l.rows[i].Name == name {
			return &l.rows[i]
		}
	}
	return nil
}

func (l *servicesList) selected() *serviceRow {
	if l.cursor < 0 || l.cursor >= len(l.shown) {
		return nil
	}
	return &l.rows[l.shown[l.cursor]]
}

func (l *servicesList) selectedName() string {
	if r := l.selected(); r != nil {
		return r.Name
	}
	return ""
}

// anyInProgress reports whether a service shows a spinner.
func (l *servicesList) anyInProgress() bool {
	for i := range l.rows {
		if inProgress(l.rows[i].status()) {
			return true
		}
	}
	return false
}

func (l *servicesList) setFilter(s string) {
	l.filter = strings.ToLower(strings.TrimSpace(s))
	l.refilter(l.selectedName())
}

func (l *servicesList) refilter(keep string) {
	l.shown = l.shown[:0]
	for i := range l.rows {
		if l.filter == "" || strings.Contains(strings.ToLower(l.rows[i].Name), l.filter) ||
			strings.Contains(strings.ToLower(l.rows[i].Image), l.filter) {
			l.shown = append(l.shown, i)
		}
	}
	for i, k := range l.shown {
		if l.rows[k].Name == keep {
			l.cursor = i
		}
	}
	l.clamp()
}

func (l *servicesList) move(delta int) {
	l.cursor += delta
	l.clamp()
}

func (l *servicesList) visibleRows() int { return max(l.height-2, 1) }

func (l *servicesList) clamp() {
	l.cursor, l.top = clampWindow(l.cursor, l.top, len(l.shown), l.visibleRows())
}

func (l *servicesList) setSize(w, h int) {
	l.width, l.height = w, h
	l.clamp()
}

// services columns; image, port and domains show when the list has the room.
const (
	svcMinName   = 10
	svcMaxName   = 24
	svcPortWidth = 5
	svcMinImage  = 16
)

type svcColumns struct{ name, status, image, port, domains int }

func layoutServices(w int) svcColumns {
	c := svcColumns{status: colStatusWidth}
	room := w - rowMarkWidth - (c.status + 1)
	c.name = min(max(room, svcMinName), svcMaxName)
	room -= c.name
	if room >= 1+svcMinImage+1+svcPortWidth {
		c.port = svcPortWidth
		room -= 1 + svcPortWidth + 1
		c.image = svcMinImage
		room -= svcMinImage
		if room > svcMinImage+1 {
			c.domains = (room - 1) / 2
			room -= c.domains + 1
		}
		c.image += room
	}
	return c
}

// view draws the list in exactly height lines of width cells.
func (l *servicesList) view(focused bool) []string {
	st := l.c.styles
	lines := make([]string, 0, l.height)
	right := strconv.Itoa(len(l.rows))
	if l.filter != "" {
		right = "filter " + strconv.Quote(l.filter) + " · " + strconv.Itoa(len(l.shown)) + "/" + right
	}
	lines = append(lines, joinEnds(st.paneTitle("Services", focused), st.Dim.Render(right+" "), l.width))
	cols := layoutServices(l.width)
	if l.height > 1 {
		lines = append(lines, l.header(cols))
	}
	switch {
	case l.err != nil:
		lines = append(lines, fit(st.Error.Render("  "+l.err.Error()), l.width))
	case !l.loaded:
		lines = append(lines, fit(st.Dim.Render("  loading…"), l.width))
	case len(l.rows) == 0:
		lines = append(lines, fit(st.Dim.Render("  no services yet: clank service create NAME --image REF --port N"), l.width))
	case len(l.shown) == 0:
		lines = append(lines, fit(st.Dim.Render("  no service matches "+strconv.Quote(l.filter)), l.width))
	}
	var b strings.Builder
	for i := l.top; i < len(l.shown) && len(lines) < l.height; i++ {
		b.Reset()
		l.row(&b, cols, &l.rows[l.shown[i]], i == l.cursor, focused)
		lines = append(lines, b.String())
	}
	for len(lines) < l.height {
		lines = append(lines, spaces(l.width))
	}
	return lines
}

func (l *servicesList) header(c svcColumns) string {
	var b strings.Builder
	p := l.c.styles.paints.header.plain
	b.WriteString(spaces(rowMarkWidth))
	p.put(&b, fit("SERVICE", c.name))
	b.WriteByte(' ')
	p.put(&b, fit("STATUS", c.status))
	if c.image > 0 {
		b.WriteByte(' ')
		p.put(&b, fit("IMAGE", c.image))
		b.WriteByte(' ')
		p.put(&b, fit("PORT", c.port))
	}
	if c.domains > 0 {
		b.WriteByte(' ')
		p.put(&b, fit("DOMAINS", c.domains))
	}
	return fit(b.String(), l.width)
}

func (l *servicesList) row(b *strings.Builder, c svcColumns, r *serviceRow, selected, focused bool) {
	p := &l.c.styles.paints
	hl := selected && focused
	text, dim := p.text.pick(hl), p.dim.pick(hl)
	mark := "  "
	if selected {
		mark = "▌ "
	}
	text.put(b, mark)
	text.put(b, fit(r.Name, c.name))
	text.put(b, " ")
	status := r.status()
	cell := glyph(status, l.c.spin) + " " + status
	if r.Frozen && !inProgress(status) {
		// A rollback froze pushes: said beside the status, which stays whole.
		const frozen = " · frozen"
		p.statusOf(status).pick(hl).put(b, fit(cell, c.status-len([]rune(frozen))))
		p.frozen.pick(hl).put(b, frozen)
	} else {
		p.statusOf(status).pick(hl).put(b, fit(cell, c.status))
	}
	used := c.name + 1 + c.status
	if c.image > 0 {
		text.put(b, " ")
		dim.put(b, fit(r.Image, c.image))
		text.put(b, " ")
		dim.put(b, fit(strconv.Itoa(r.Port), c.port))
		used += 1 + c.image + 1 + c.port
	}
	if c.domains > 0 {
		text.put(b, " ")
		dim.put(b, fit(strings.Join(r.Domains, ","), c.domains))
		used += 1 + c.domains
	}
	if rest := l.width - rowMarkWidth - used; rest > 0 {
		text.put(b, spaces(rest))
	}
}
