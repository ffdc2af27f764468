package ui

import (
	"strconv"
	"strings"
	"time"

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

	// counts are the router's counts of each service (the sparkline).
	counts                       map[string]api.Traffic
	trafficLoading, trafficStale bool

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
		r.ActiveNumber, r.ActiveImage = d.Number, d.Image
		r.Runtime, r.RuntimeReason, r.Restarts, r.LastExit = d.Runtime, d.RuntimeReason, d.Restarts, d.LastExit
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

// The services list's columns, in order.
const (
	svcName = iota
	svcStatus
	svcNum
	svcImage
	svcNext
	svcTraffic
	svcUsage
	svcPort
	svcDomains
)

const (
	frozenText  = " · frozen"
	frozenGlyph = " ❄"
	// trafficWant holds a sparkline and the last step's rate ("12.5/s").
	trafficWant = sparkCells + 1 + 6
)

// nextImage is the image the service's next deploy runs, when it is not
// the one that runs now ("" when it is).
func (r *serviceRow) nextImage() string {
	if r.Image == r.ActiveImage {
		return ""
	}
	return r.Image
}

// statusCell is the row's status in w cells: the runtime of its ACTIVE
// deployment beside it, and the freeze of pushes after it.
func (r *serviceRow) statusCell(spin string, w int) string {
	status := r.status()
	runtime := r.Runtime
	if inProgress(status) {
		runtime = nil
	}
	if !r.Frozen || inProgress(status) {
		return statusCell(status, runtime, nil, time.Time{}, spin, w)
	}
	frozen := frozenText
	if len([]rune(statusCell(status, runtime, nil, time.Time{}, spin, 99)))+len([]rune(frozen)) > w {
		frozen = frozenGlyph
	}
	return statusCell(status, runtime, nil, time.Time{}, spin, w-len([]rune(frozen))) + frozen
}

// columns are the list's columns, wanting what its rows hold.
func (l *servicesList) columns() []column {
	var name, status, num, image, next, domains int
	for i := range l.rows {
		r := &l.rows[i]
		name = max(name, cellWidth(r.Name))
		status = max(status, len([]rune(r.statusCell("⠋", 99))))
		if r.ActiveNumber > 0 {
			num = max(num, 1+len(strconv.Itoa(r.ActiveNumber)))
		}
		image = max(image, cellWidth(r.ActiveImage))
		next = max(next, cellWidth(r.nextImage()))
		domains = max(domains, cellWidth(strings.Join(r.Domains, ",")))
	}
	cols := []column{
		svcName:    {title: "SERVICE", want: max(name, 7), min: min(max(name, 7), 8), keep: true, prio: 10},
		svcStatus:  {title: "STATUS", want: max(status, 8), min: 10, keep: true, prio: 10},
		svcNum:     {title: "#", want: num, prio: 8},
		svcImage:   {title: "RUNNING", want: max(image, 7), min: min(max(image, 7), 16), prio: 9},
		svcNext:    {title: "NEXT DEPLOY", want: next, min: min(next, 12), prio: 5},
		svcTraffic: {title: "REQ/S", want: trafficWant, compact: sparkCells, prio: 7},
		svcUsage:   {title: usageTitle, want: usageWidth, prio: 6},
		svcPort:    {title: "PORT", want: 5, prio: 2},
		svcDomains: {title: "DOMAINS", want: max(domains, 7), max: 48, min: min(max(domains, 7), 12), prio: 1},
	}
	if next > 0 {
		cols[svcNext].want = max(next, len(cols[svcNext].title))
	}
	return cols
}

// naturalWidth is how wide the list would be with every column whole.
func (l *servicesList) naturalWidth() int {
	w := rowMarkWidth // and the blank before the edge, less the first column's blank
	for _, c := range l.columns() {
		if c.want > 0 {
			w += c.want + 1
		}
	}
	return w
}

// view draws the list in exactly height lines of width cells.
func (l *servicesList) view(focused bool) []string {
	st := l.c.styles
	lines := make([]string, 0, l.height)
	// The cursor's position among the rows shown ("2/5"), and with a
	// filter how many there are in all.
	right := strconv.Itoa(len(l.rows))
	if len(l.shown) > 0 {
		right = strconv.Itoa(l.cursor+1) + "/" + strconv.Itoa(len(l.shown))
	}
	if l.filter != "" {
		right = "filter " + strconv.Quote(l.filter) + " · " + right + " of " + strconv.Itoa(len(l.rows))
	}
	lines = append(lines, joinEnds(st.paneTitle("Services", focused), st.Dim.Render(right+" "), l.width))
	cols := l.columns()
	// One blank stays before the pane's edge: a spinner or a cut cell
	// never touches the divider.
	widths, tight := fitColumns(cols, l.width-rowMarkWidth-1)
	if l.height > 1 {
		lines = append(lines, headerLine(st, cols, widths, l.width))
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
	var b rowsBuilder
	b.Grow(max(min(len(l.shown)-l.top, l.height), 0) * (l.width + rowEscapes))
	now := l.c.now()
	for i := l.top; i < len(l.shown) && len(lines) < l.height; i++ {
		l.row(&b.Builder, widths, &l.rows[l.shown[i]], now, i == l.cursor, focused)
		line := b.line()
		if tight {
			line = fit(line, l.width)
		}
		lines = append(lines, line)
	}
	for len(lines) < l.height {
		lines = append(lines, spaces(l.width))
	}
	return lines
}

func (l *servicesList) row(b *strings.Builder, widths []int, r *serviceRow, now time.Time, selected, focused bool) {
	p := &l.c.styles.paints
	hl := selected && focused
	text, dim := p.text.pick(hl), p.dim.pick(hl)
	mark := "  "
	if selected {
		mark = "▌ "
	}
	text.put(b, mark)
	used := 0
	sep := func(w int) bool {
		if w == 0 {
			return false
		}
		if used > 0 {
			text.put(b, " ")
			used++
		}
		used += w
		return true
	}
	cell := func(pt paint, s string, w int) {
		if sep(w) {
			pt.put(b, fit(s, w))
		}
	}
	cell(text, r.Name, widths[svcName])
	status := r.status()
	if w := widths[svcStatus]; sep(w) {
		cellText := r.statusCell(l.c.spin, w)
		key := statusKey(status, r.Runtime)
		if inProgress(status) {
			key = status
		}
		if i := strings.Index(cellText, frozenText); i > 0 && r.Frozen {
			p.statusOf(key).pick(hl).put(b, cellText[:i])
			p.frozen.pick(hl).put(b, fit(cellText[i:], w-cellWidth(cellText[:i])))
		} else if i := strings.Index(cellText, frozenGlyph); i > 0 && r.Frozen {
			p.statusOf(key).pick(hl).put(b, cellText[:i])
			p.frozen.pick(hl).put(b, fit(cellText[i:], w-cellWidth(cellText[:i])))
		} else {
			p.statusOf(key).pick(hl).put(b, fit(cellText, w))
		}
	}
	num := ""
	if r.ActiveNumber > 0 {
		num = "#" + strconv.Itoa(r.ActiveNumber)
	}
	cell(dim, num, widths[svcNum])
	running := r.ActiveImage
	if running == "" {
		running = "-"
	}
	cell(text, abbrevImage(running, widths[svcImage]), widths[svcImage])
	cell(p.next.pick(hl), abbrevImage(r.nextImage(), widths[svcNext]), widths[svcNext])
	if w := widths[svcTraffic]; sep(w) {
		l.traffic(b, r, now, w, hl)
	}
	cell(dim, l.usageCell(r), widths[svcUsage])
	cell(dim, strconv.Itoa(r.Port), widths[svcPort])
	cell(dim, strings.Join(r.Domains, ","), widths[svcDomains])
	if rest := l.width - rowMarkWidth - used; rest > 0 {
		text.put(b, spaces(rest))
	}
}
