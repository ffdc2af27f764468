package ui

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/clank-dev/clank/api"
)

// windowPages is how many pages of deployments the table keeps in memory; the
// rest of a long history stays in the store and is paged in as the cursor
// nears an edge of the window.
const windowPages = 3

// pageDir says which page of a service's deployments a request asked for.
type pageDir int

const (
	pageNewest pageDir = iota // the newest page (a fresh start)
	pageOldest                // the oldest page (G)
	pageOlder                 // the page after the window's last row
	pageNewer                 // the page before the window's first row
)

// pageMsg answers a page request. anchor is the number the request was
// relative to, so an answer that no longer fits the window is dropped.
type pageMsg struct {
	gen    int
	dir    pageDir
	anchor int
	rows   []api.Deployment
	err    error
}

// deploymentsTable is a service's deployments, newest first. It holds a
// window of at most windowPages pages, draws only the rows on screen, and
// applies live status changes in place.
type deploymentsTable struct {
	c       *common
	service string

	rows     []api.Deployment // the window, newest first (numbers descending)
	hasNewer bool             // rows newer than rows[0] exist but are not loaded
	hasOlder bool             // rows older than the last row may exist
	loading  bool
	gen      int // bumped by every fresh start: older answers are dropped
	err      error
	// pending holds the latest live state of deployments that changed while
	// a page was on its way, so an answer read before a change cannot hide it.
	pending map[int]api.Deployment

	filter string
	// match is the view: indices into rows that match filter, in the sort's
	// order; nil when there is no filter and the order is the rows' own.
	match []int
	sort  tableSort
	// newest is the highest deployment number of the service seen since it
	// was opened (0: not known yet): rows are numbered 1..newest without
	// gaps, so a row's position in the whole history is newest-number+1.
	newest int

	cursor, top   int // positions in the view (the filtered rows, or all)
	width, height int
	seen          contentWidths // of the rows shown since the service was opened
}

func newDeploymentsTable(c *common) deploymentsTable {
	return deploymentsTable{c: c}
}

// open shows a service's deployments from the newest.
func (t *deploymentsTable) open(service string) tea.Cmd {
	t.service = service
	clear(t.pending)
	t.rows = nil
	t.match = nil
	t.filter = ""
	t.newest = 0
	t.cursor, t.top = 0, 0
	t.err = nil
	t.seen = contentWidths{}
	return tea.Batch(t.restart(pageNewest), t.recheckImages())
}

// recheckImages has the daemon check the service's images again when its
// last check is older than 30 s, so that the badges a person opens are
// fresh: a change comes back as an availability event, which reads the
// rows again (refresh).
func (t *deploymentsTable) recheckImages() tea.Cmd {
	ctx, b, service := t.c.ctx, t.c.backend, t.service
	return func() tea.Msg {
		_, _ = b.RecheckImages(ctx, service) // a failed check leaves the badges as they were
		return nil
	}
}

// restart drops the window and fetches the newest or the oldest page.
func (t *deploymentsTable) restart(dir pageDir) tea.Cmd {
	t.gen++
	before := 0
	if dir == pageOldest {
		// Numbers start at 1, so the oldest page is every number up to a page.
		before = t.pageSize() + 1
	}
	return t.fetch(dir, before, 0)
}

func (t *deploymentsTable) pageSize() int { return t.c.opts.PageSize }

func (t *deploymentsTable) fetch(dir pageDir, before, anchor int) tea.Cmd {
	t.loading = true
	ctx, b, service, limit, gen := t.c.ctx, t.c.backend, t.service, t.pageSize(), t.gen
	return func() tea.Msg {
		rows, err := b.Deployments(ctx, service, limit, before)
		return pageMsg{gen: gen, dir: dir, anchor: anchor, rows: rows, err: err}
	}
}

// refreshMsg answers a re-read of the window's rows.
type refreshMsg struct {
	gen  int
	rows []api.Deployment
	err  error
}

// refresh reads the window's rows again, for what no deployment event
// carries: an image's availability changed, and with it the badges of every
// deployment that ran it.
func (t *deploymentsTable) refresh() tea.Cmd {
	if t.service == "" || len(t.rows) == 0 {
		return nil
	}
	ctx, b, service, gen := t.c.ctx, t.c.backend, t.service, t.gen
	before, limit := t.rows[0].Number+1, len(t.rows)
	return func() tea.Msg {
		rows, err := b.Deployments(ctx, service, limit, before)
		return refreshMsg{gen: gen, rows: rows, err: err}
	}
}

// applyRefresh updates the rows still in the window in place.
func (t *deploymentsTable) applyRefresh(msg refreshMsg) {
	if msg.gen != t.gen || msg.err != nil {
		return
	}
	for _, d := range msg.rows {
		if i, ok := t.search(d.Number); ok {
			t.rows[i] = d
		}
	}
}

// applyPage merges an answered page into the window.
func (t *deploymentsTable) applyPage(msg pageMsg) tea.Cmd {
	if msg.gen != t.gen {
		return nil
	}
	t.loading = false
	if msg.err != nil {
		t.err = msg.err
		return nil
	}
	t.err = nil
	keep := t.selectedNumber()
	limit := t.pageSize()
	switch msg.dir {
	case pageNewest, pageOldest:
		t.rows = append(make([]api.Deployment, 0, windowPages*limit), msg.rows...)
		t.hasNewer = msg.dir == pageOldest
		t.hasOlder = msg.dir == pageNewest && len(msg.rows) == limit
		if msg.dir == pageNewest {
			t.cursor, t.top = 0, 0
		} else {
			t.cursor = len(t.rows) - 1
		}
		keep = 0
	case pageOlder:
		if len(t.rows) == 0 || msg.anchor != t.rows[len(t.rows)-1].Number {
			return nil
		}
		t.hasOlder = len(msg.rows) == limit
		t.rows = append(t.rows, msg.rows...)
		if over := len(t.rows) - windowPages*limit; over > 0 {
			t.rows = dropFront(t.rows, over)
			t.hasNewer = true
		}
	case pageNewer:
		if len(t.rows) == 0 || msg.anchor != t.rows[0].Number {
			return nil
		}
		newer := msg.rows
		for len(newer) > 0 && newer[len(newer)-1].Number <= t.rows[0].Number {
			newer = newer[:len(newer)-1]
		}
		t.hasNewer = len(newer) == limit
		t.rows = slices.Insert(t.rows, 0, newer...)
		if over := len(t.rows) - windowPages*limit; over > 0 {
			clear(t.rows[len(t.rows)-over:])
			t.rows = t.rows[:len(t.rows)-over]
			t.hasOlder = true
		}
	}
	if len(t.rows) > 0 && !t.hasNewer {
		t.newest = max(t.newest, t.rows[0].Number)
	}
	t.refilter()
	if keep > 0 {
		t.cursor = t.indexOf(keep)
	}
	t.clamp()
	for _, n := range slices.Sorted(maps.Keys(t.pending)) {
		d := t.pending[n]
		t.applyDeployment(&d)
	}
	clear(t.pending)
	return t.maybeFetch()
}

// dropFront removes the first n rows in place, so the window's array is
// reused and its size stays bounded.
func dropFront(rows []api.Deployment, n int) []api.Deployment {
	m := copy(rows, rows[n:])
	clear(rows[m:])
	return rows[:m]
}

// maybeFetch asks for the next page when the cursor nears an edge of the
// window and more rows lie beyond it. Sorted by another column than the
// number, the view is the window's rows (the title says so): the cursor's
// place says nothing about the pages beyond it.
func (t *deploymentsTable) maybeFetch() tea.Cmd {
	if t.loading || len(t.rows) == 0 || !t.sort.isDefault() {
		return nil
	}
	margin := max(t.pageSize()/2, t.height)
	switch {
	case t.hasOlder && t.len()-1-t.cursor < margin:
		last := t.rows[len(t.rows)-1].Number
		return t.fetch(pageOlder, last, last)
	case t.hasNewer && t.cursor < margin:
		first := t.rows[0].Number
		return t.fetch(pageNewer, first+t.pageSize()+1, first)
	}
	return nil
}

// applyDeployment puts a deployment's new state in its row, in place. A new
// deployment of the service goes on top when the window starts at the newest.
// It reports whether the table changed.
func (t *deploymentsTable) applyDeployment(d *api.Deployment) bool {
	if d == nil || d.Service != t.service || t.service == "" {
		return false
	}
	if t.newest > 0 {
		t.newest = max(t.newest, d.Number)
	}
	if t.loading {
		t.remember(d)
	}
	i, found := t.search(d.Number)
	if found {
		t.rows[i] = *d
		if t.match != nil {
			keep := t.selectedNumber()
			t.refilter()
			t.cursor = t.indexOf(keep)
			t.clamp()
		}
		return true
	}
	if i != 0 || t.hasNewer || t.loading && len(t.rows) == 0 {
		return false // outside the window: it is fetched when scrolled to
	}
	keep := t.selectedNumber()
	t.rows = slices.Insert(t.rows, 0, *d)
	if over := len(t.rows) - windowPages*t.pageSize(); over > 0 {
		clear(t.rows[len(t.rows)-over:])
		t.rows = t.rows[:len(t.rows)-over]
		t.hasOlder = true
	}
	t.refilter()
	if keep > 0 {
		t.cursor = t.indexOf(keep)
		if t.top > 0 {
			t.top++
		}
	}
	t.clamp()
	return true
}

// maxPending bounds the changes remembered while a page loads.
const maxPending = 1024

func (t *deploymentsTable) remember(d *api.Deployment) {
	if t.pending == nil {
		t.pending = make(map[int]api.Deployment)
	}
	if _, ok := t.pending[d.Number]; ok || len(t.pending) < maxPending {
		t.pending[d.Number] = *d
	}
}

// search finds a deployment number in the window (rows are numbered
// descending); if absent, i is where it would go.
func (t *deploymentsTable) search(number int) (i int, found bool) {
	i = sort.Search(len(t.rows), func(k int) bool { return t.rows[k].Number <= number })
	return i, i < len(t.rows) && t.rows[i].Number == number
}

// len is the number of rows in the view.
func (t *deploymentsTable) len() int {
	if t.match != nil {
		return len(t.match)
	}
	return len(t.rows)
}

// at is the view's i-th row.
func (t *deploymentsTable) at(i int) *api.Deployment {
	if t.match != nil {
		return &t.rows[t.match[i]]
	}
	return &t.rows[i]
}

// indexOf is the view position of a deployment number, or the position of
// the nearest older one (sorted by another column, of the cursor's row when
// the number is not in the view).
func (t *deploymentsTable) indexOf(number int) int {
	if !t.sort.isDefault() {
		for k := range t.len() {
			if t.at(k).Number == number {
				return k
			}
		}
		return t.cursor
	}
	return sort.Search(t.len(), func(k int) bool { return t.at(k).Number <= number })
}

func (t *deploymentsTable) selected() *api.Deployment {
	if t.cursor < 0 || t.cursor >= t.len() {
		return nil
	}
	return t.at(t.cursor)
}

func (t *deploymentsTable) selectedNumber() int {
	if d := t.selected(); d != nil {
		return d.Number
	}
	return 0
}

// setFilter keeps only the rows whose number, status, kind, image or author
// contain s (case-insensitive), among the rows of the window.
func (t *deploymentsTable) setFilter(s string) {
	keep := t.selectedNumber()
	t.filter = strings.ToLower(strings.TrimSpace(s))
	t.refilter()
	t.cursor = t.indexOf(keep)
	t.clamp()
}

func (t *deploymentsTable) refilter() {
	if t.filter == "" && t.sort.isDefault() {
		t.match = nil
		return
	}
	t.match = t.match[:0]
	if t.match == nil {
		t.match = make([]int, 0, len(t.rows))
	}
	for i := range t.rows {
		if t.filter == "" || deploymentMatches(&t.rows[i], t.filter) {
			t.match = append(t.match, i)
		}
	}
	if !t.sort.isDefault() {
		slices.SortStableFunc(t.match, func(a, b int) int { return t.sort.compare(&t.rows[a], &t.rows[b]) })
	}
}

func deploymentMatches(d *api.Deployment, f string) bool {
	return strings.Contains("#"+strconv.Itoa(d.Number), f) ||
		strings.Contains(strings.ToLower(d.Status), f) ||
		strings.Contains(strings.ToLower(kindText(d)), f) ||
		strings.Contains(strings.ToLower(d.Image), f) ||
		strings.Contains(strings.ToLower(d.TriggeredBy), f)
}

// move moves the cursor by delta rows and fetches a page if it nears an edge.
func (t *deploymentsTable) move(delta int) tea.Cmd {
	t.cursor += delta
	t.clamp()
	return t.maybeFetch()
}

// toNewest and toOldest jump to an end of the whole history.
func (t *deploymentsTable) toNewest() tea.Cmd {
	if !t.sort.isDefault() {
		t.cursor = 0 // the view's first row
		t.clamp()
		return nil
	}
	if t.hasNewer {
		return t.restart(pageNewest)
	}
	t.cursor = 0
	t.clamp()
	return nil
}

func (t *deploymentsTable) toOldest() tea.Cmd {
	if !t.sort.isDefault() {
		t.cursor = t.len() - 1 // the view's last row
		t.clamp()
		return nil
	}
	if t.hasOlder {
		return t.restart(pageOldest)
	}
	t.cursor = t.len() - 1
	t.clamp()
	return nil
}

func (t *deploymentsTable) visibleRows() int { return max(t.height-2, 1) }

// clamp keeps the cursor on a row and the cursor's row on screen.
func (t *deploymentsTable) clamp() {
	t.cursor, t.top = clampWindow(t.cursor, t.top, t.len(), t.visibleRows())
}

func (t *deploymentsTable) setSize(w, h int) {
	t.width, t.height = w, h
	t.clamp()
}

// The deployments table's columns, in order.
const (
	depNum = iota
	depStatus
	depKind
	depImage
	depAge
	depBy
	depBadge
	depColumnCount
)

const (
	rowMarkWidth = 2
	// badgeText is the badge whole; badgeGlyph stands for it in a narrow
	// table, with a legend in the title; goneGlyph for "image gone".
	badgeText  = "Rollback capable"
	badgeGlyph = "↺"
	goneText   = "image gone"
	goneGlyph  = "∅"
	// statusWant fits "⠋ HEALTH_CHECKING", the longest plain status.
	statusWant = 17
)

// contentWidths is how wide the content of the rows seen so far wants each
// column: it only grows while a service is shown, so that scrolling does
// not make the columns jump.
type contentWidths struct {
	num, status, kind, image, by int
}

func (w *contentWidths) see(d *api.Deployment, now time.Time) {
	w.num = max(w.num, 1+len(strconv.Itoa(d.Number)))
	w.status = max(w.status, statusWant, len([]rune(statusCell(d.Status, d.Runtime, d.WarmUntil, now, "", 99))))
	w.kind = max(w.kind, len(kindText(d)))
	w.image = max(w.image, cellWidth(d.Image))
	w.by = max(w.by, cellWidth(d.TriggeredBy))
}

// layout fits the columns to the table's width (see fitColumns): number and
// status always; the badge turns into a glyph, then the author, kind, age
// and image give way, in that order, the image keeping its tag.
func (t *deploymentsTable) layout() ([]column, []int, bool) {
	now := t.c.now()
	for i := t.top; i < t.len() && i < t.top+t.visibleRows(); i++ {
		t.seen.see(t.at(i), now)
	}
	w := t.seen
	cols := []column{
		depNum:    {title: "#", want: max(w.num, 2), keep: true, prio: 10},
		depStatus: {title: "STATUS", want: max(w.status, statusWant), min: statusWant, keep: true, prio: 10},
		depKind:   {title: "KIND", want: max(w.kind, 6), prio: 4},
		depImage:  {title: "IMAGE", want: max(w.image, 5), min: min(max(w.image, 5), 16), prio: 8},
		depAge:    {title: "AGE", want: 3, prio: 7},
		depBy:     {title: "BY", want: min(max(w.by, 2), 36), min: min(max(w.by, 2), 10), prio: 3},
		depBadge:  {title: "", want: len(badgeText), compact: 1, prio: 5},
	}
	if c := t.sort.column(); c >= 0 {
		cols[c].title += t.sort.arrow()
		cols[c].want = max(cols[c].want, cellWidth(cols[c].title))
		cols[c].min = max(cols[c].min, min(cellWidth(cols[c].title), cols[c].want))
	}
	widths, tight := fitColumns(cols, t.width-rowMarkWidth)
	return cols, widths, tight
}

// view draws the table: a title, the column header and the visible rows,
// exactly height lines of width cells.
// target, if not 0, is the number of the row that r would roll back to
// from the services list: it is marked.
func (t *deploymentsTable) view(focused bool, target int) []string {
	cols, widths, tight := t.layout()
	lines := make([]string, 0, t.height)
	lines = append(lines, t.title(focused, widths[depBadge] == 1))
	if t.height > 1 {
		lines = append(lines, headerLine(t.c.styles, cols, widths, t.width))
	}
	vis := t.visibleRows()
	n := t.len()
	switch {
	case t.err != nil:
		lines = append(lines, fit(t.c.styles.Error.Render("  "+t.err.Error()), t.width))
	case n == 0 && t.loading:
		lines = append(lines, fit(t.c.styles.Dim.Render("  loading…"), t.width))
	case n == 0 && t.filter != "":
		lines = append(lines, fit(t.c.styles.Dim.Render("  no deployment matches "+strconv.Quote(t.filter)), t.width))
	case n == 0 && t.service != "":
		lines = append(lines, fit(t.c.styles.Dim.Render("  no deployments yet: d deploys the service"), t.width))
	}
	var b rowsBuilder
	b.Grow(max(min(n-t.top, vis, t.height), 0) * (t.width + rowEscapes))
	now := t.c.now()
	for i := t.top; i < n && len(lines) < t.height && i < t.top+vis; i++ {
		t.row(&b.Builder, widths, t.at(i), now, i == t.cursor, focused, target)
		line := b.line()
		if tight {
			line = fit(line, t.width)
		}
		lines = append(lines, line)
	}
	for len(lines) < t.height {
		lines = append(lines, spaces(t.width))
	}
	return lines
}

// title names the service; on the right, what the table holds, and the
// legend of the badge's glyph when the badge is one.
func (t *deploymentsTable) title(focused, glyphs bool) string {
	st := t.c.styles
	left := st.paneTitle(t.service+" deployments", focused)
	order := t.sort.String()
	if !t.sort.isDefault() && (t.hasOlder || t.hasNewer) {
		order += " (" + strconv.Itoa(len(t.rows)) + " loaded)"
	}
	right := order
	if glyphs {
		right = badgeGlyph + " rollback capable · " + goneGlyph + " image gone · " + right
	}
	if t.filter != "" {
		right = "filter " + strconv.Quote(t.filter) + " · " + right
	}
	if t.loading {
		right = "loading… · " + right
	}
	pos := t.position()
	if pos != "" {
		right = pos + " · " + right
	}
	if cellWidth(left)+cellWidth(right)+2 > t.width {
		// Short of room: the position and the order stay, then the legend.
		right = strings.TrimPrefix(pos+" · "+order, " · ")
		if glyphs && cellWidth(left)+cellWidth(right)+cellWidth(badgeGlyph+" rollback capable · ")+2 <= t.width {
			right = badgeGlyph + " rollback capable · " + right
		}
	}
	return joinEnds(left, st.Dim.Render(right+" "), t.width)
}

// position is where the cursor's row is, as "12/31": in the whole history
// when the view is every row newest first, else among the rows of the view.
func (t *deploymentsTable) position() string {
	d := t.selected()
	if d == nil {
		return ""
	}
	if t.filter == "" && t.sort.isDefault() && t.newest >= d.Number {
		return strconv.Itoa(t.newest-d.Number+1) + "/" + strconv.Itoa(t.newest)
	}
	return strconv.Itoa(t.cursor+1) + "/" + strconv.Itoa(t.len())
}

// row draws one deployment. It runs for every visible row of every frame, so
// it writes precomputed SGR sequences instead of rendering lipgloss styles.
func (t *deploymentsTable) row(b *strings.Builder, widths []int, d *api.Deployment, now time.Time, selected, focused bool, target int) {
	p := &t.c.styles.paints
	hl := selected && focused
	text, dim := p.text.pick(hl), p.dim.pick(hl)
	switch {
	case d.Number == target:
		p.badge.pick(hl).put(b, "r▸")
	case selected:
		text.put(b, "▌ ")
	default:
		text.put(b, "  ")
	}
	used := 0 // cells written after the mark
	cell := func(pt paint, s string, w int) {
		if w == 0 {
			return
		}
		if used > 0 {
			text.put(b, " ")
			used++
		}
		pt.put(b, fit(s, w))
		used += w
	}
	cell(text, "#"+strconv.Itoa(d.Number), widths[depNum])
	w := widths[depStatus]
	status := statusCell(d.Status, d.Runtime, d.WarmUntil, now, t.c.spin, w)
	if rt := replicasText(d); rt != "" && len([]rune(status+rt)) <= w {
		status += rt
	}
	cell(p.statusOf(statusKey(d.Status, d.Runtime)).pick(hl), status, w)
	cell(dim, kindText(d), widths[depKind])
	cell(text, abbrevImage(d.Image, widths[depImage]), widths[depImage])
	cell(dim, age(now, d.CreatedAt), widths[depAge])
	cell(dim, d.TriggeredBy, widths[depBy])
	badge, gone := badgeText, goneText
	if widths[depBadge] == 1 {
		badge, gone = badgeGlyph, goneGlyph
	}
	switch {
	case d.RollbackCapable:
		cell(p.badge.pick(hl), badge, widths[depBadge])
	case d.ImageAvailability == "missing":
		cell(dim, gone, widths[depBadge])
	default:
		cell(dim, "", widths[depBadge])
	}
	if rest := t.width - rowMarkWidth - used; rest > 0 {
		text.put(b, spaces(rest))
	}
}

// relativeTimesWait is how long until an age or a warm standby's countdown
// on a visible row shows another text (0: no row is visible).
func (t *deploymentsTable) relativeTimesWait(now time.Time) time.Duration {
	var wait time.Duration
	for i := t.top; i < t.len() && i < t.top+t.visibleRows(); i++ {
		d := t.at(i)
		wait = soonest(wait, nextChange(now.Sub(d.CreatedAt)))
		if d.WarmUntil != nil && d.WarmUntil.After(now) {
			wait = soonest(wait, countdownChange(d.WarmUntil.Sub(now)))
		}
	}
	return wait
}

// replicasText follows the status of an ACTIVE deployment that runs more
// than one replica: " 2/3" healthy of its count.
func replicasText(d *api.Deployment) string {
	if d.Runtime == nil || d.Replicas <= 1 {
		return ""
	}
	return fmt.Sprintf(" %d/%d", d.HealthyReplicas, d.Replicas)
}

// joinEnds puts left and right at the two ends of a line of width cells.
func joinEnds(left, right string, width int) string {
	lw, rw := cellWidth(left), cellWidth(right)
	if lw+rw+1 > width {
		return fit(left, width)
	}
	return left + spaces(width-lw-rw) + right
}
