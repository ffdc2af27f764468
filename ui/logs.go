package ui

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/clank-dev/clank/api"
)

// maxLogLines bounds the lines the logs view keeps; older ones scroll away.
const maxLogLines = 5000

// logChunkMsg carries output of the followed container; logEndMsg says the
// stream ended (the container stopped, or the view was left).
type (
	logChunkMsg struct {
		gen  int
		data []byte
	}
	logEndMsg struct {
		gen int
		err error
	}
)

// logLine is one line of a deployment's output.
type logLine struct {
	at     time.Time // when the container wrote it; zero if the stream did not say
	text   string    // cleaned: no escape sequences, no control characters
	header bool      // the header of a removed container's kept log (text is what to show)
}

// logView follows a deployment's logs: its container's, or the log the
// daemon kept when it removed the container. It scrolls by line, follows
// the end until scrolled away from it (then counts what arrives meanwhile),
// searches (/, n, N, matches highlighted), wraps long lines or scrolls
// sideways, and shows each line's time on demand.
type logView struct {
	c       *common
	label   string
	gen     int
	cancel  context.CancelFunc
	ch      chan []byte
	lines   []logLine
	partial string
	ended   bool
	err     error
	kept    bool // the container is gone: the stream is the log the daemon kept

	top     int  // the first line shown
	follow  bool // the end is shown, and new lines scroll in
	unseen  int  // lines that arrived while not following
	wrap    bool // long lines wrap; else they are cut, and ←/→ scroll sideways
	stamps  bool // each line's time is shown
	hscroll int  // columns scrolled sideways (not wrapping)

	typing  bool   // the search query is being typed
	input   string // what is typed so far
	query   string // the search in effect, "" for none
	matches []int  // the lines that hold query, in order
	cur     int    // the current match (index in matches), -1 for none
	note    string // what the last search key did: "no match", "wrapped to the top"

	width, height int
}

// logKeys are the keys of the logs view, declared once with their help.
var logKeys = struct {
	Search, Next, Prev, Wrap, Stamps, Left, Right, Follow key.Binding
}{
	Search: key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "search")),
	Next:   key.NewBinding(key.WithKeys("n"), key.WithHelp("n/N", "match")),
	Prev:   key.NewBinding(key.WithKeys("N"), key.WithHelp("N", "previous match")),
	Wrap:   key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "wrap")),
	Stamps: key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "times")),
	Left:   key.NewBinding(key.WithKeys("left"), key.WithHelp("←/→", "scroll")),
	Right:  key.NewBinding(key.WithKeys("right"), key.WithHelp("→", "scroll right")),
	Follow: key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "follow")),
}

// Styles of the logs view: a kept log's header, search matches (the
// current one stronger), times.
var (
	keptHeaderStyle = lipgloss.NewStyle().Foreground(colYellow).Bold(true)
	matchStyle      = lipgloss.NewStyle().Foreground(lipgloss.Color("#000000")).Background(colYellow)
	curMatchStyle   = lipgloss.NewStyle().Foreground(colOnColor).Background(colAccent).Bold(true)
)

func newLogView(c *common) logView {
	return logView{c: c, wrap: true, cur: -1}
}

// open starts following a deployment's logs (deploymentID "" = the
// service's active one). The Backend call runs until stop or the program's
// context ends. The search, wrap and times settings stay from the last time.
func (v *logView) open(service, deploymentID, label string) tea.Cmd {
	v.stop()
	v.gen++
	v.label, v.lines, v.partial, v.ended, v.err, v.kept = label, nil, "", false, nil, false
	v.top, v.follow, v.unseen, v.hscroll = 0, true, 0, 0
	v.typing, v.matches, v.cur, v.note = false, nil, -1, ""
	ctx, cancel := context.WithCancel(v.c.ctx)
	v.cancel = cancel
	ch := make(chan []byte, 64)
	v.ch = ch
	b, gen := v.c.backend, v.gen
	follow := func() tea.Msg {
		err := b.Logs(ctx, service, deploymentID, api.LogOptions{Follow: true, Timestamps: true}, chanWriter{ctx: ctx, ch: ch})
		close(ch)
		if ctx.Err() != nil {
			err = nil
		}
		return logEndMsg{gen: gen, err: err}
	}
	return tea.Batch(follow, readLogs(gen, ch))
}

// stop ends the current stream, if any.
func (v *logView) stop() {
	if v.cancel != nil {
		v.cancel()
		v.cancel = nil
	}
}

// readLogs delivers what the stream wrote since the last read, and re-arms
// itself until the stream's channel closes.
func readLogs(gen int, ch <-chan []byte) tea.Cmd {
	return func() tea.Msg {
		data, ok := <-ch
		if !ok {
			return nil
		}
		for len(data) < 64<<10 {
			select {
			case more, ok := <-ch:
				if !ok {
					return logChunkMsg{gen: gen, data: data}
				}
				data = append(data, more...)
				continue
			default:
			}
			break
		}
		return logChunkMsg{gen: gen, data: data}
	}
}

// chanWriter hands each write to the view's reader.
type chanWriter struct {
	ctx context.Context
	ch  chan<- []byte
}

func (w chanWriter) Write(p []byte) (int, error) {
	cp := append([]byte(nil), p...)
	select {
	case w.ch <- cp:
		return len(p), nil
	case <-w.ctx.Done():
		return 0, w.ctx.Err()
	}
}

// apply adds a chunk of output; it returns the command reading the next one.
func (v *logView) apply(msg logChunkMsg) tea.Cmd {
	if msg.gen != v.gen {
		return nil
	}
	text := v.partial + string(msg.data)
	parts := strings.Split(text, "\n")
	v.partial = parts[len(parts)-1]
	for _, l := range parts[:len(parts)-1] {
		v.add(l)
	}
	v.trim()
	return readLogs(v.gen, v.ch)
}

func (v *logView) end(msg logEndMsg) {
	if msg.gen != v.gen {
		return
	}
	v.ended, v.err = true, msg.err
	if v.partial != "" {
		v.add(v.partial)
		v.partial = ""
	}
}

// add appends a raw line of the stream: it is searched, and scrolled to
// when following, or counted as unseen when not.
func (v *logView) add(raw string) {
	l := v.parseLine(raw)
	v.lines = append(v.lines, l)
	if v.query != "" && v.holds(l) {
		v.matches = append(v.matches, len(v.lines)-1)
	}
	if v.follow {
		v.toEnd()
	} else {
		v.unseen++
	}
}

// trim drops the oldest lines beyond maxLogLines, keeping the view on the
// lines it showed.
func (v *logView) trim() {
	over := len(v.lines) - maxLogLines
	if over <= 0 {
		return
	}
	v.lines = append(v.lines[:0], v.lines[over:]...)
	v.top = max(v.top-over, 0)
	kept := v.matches[:0]
	for _, i := range v.matches {
		if i >= over {
			kept = append(kept, i-over)
		}
	}
	dropped := len(v.matches) - len(kept)
	v.matches = kept
	if v.cur >= 0 {
		v.cur = max(v.cur-dropped, 0)
		if v.cur >= len(v.matches) {
			v.cur = len(v.matches) - 1
		}
	}
	v.clamp()
}

// parseLine reads a line of the stream: its time, if the stream gave one,
// and its text; the header the daemon puts above a removed container's
// kept log says so in its own words, with the removal's time and age.
func (v *logView) parseLine(raw string) logLine {
	if id, removed, ok := api.ParseKeptLogHeader(raw); ok {
		v.kept = true
		text := "── kept from removed container " + cleanLogLine(id) + " · removed " + stamp(&removed) +
			" (" + age(v.c.now(), removed) + " ago)"
		if strings.Contains(raw, "older output was not kept") {
			text += " · older output was not kept"
		}
		return logLine{text: text + " ──", header: true}
	}
	at, rest, _ := api.SplitLogTimestamp(raw)
	return logLine{at: at, text: cleanLogLine(rest)}
}

// cleanLogLine keeps a container's output from driving the terminal: escape
// sequences and control characters go, tabs become spaces.
func cleanLogLine(s string) string {
	s = ansi.Strip(s)
	s = strings.ReplaceAll(s, "\t", "    ")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func (v *logView) setSize(w, h int) {
	v.width, v.height = w, h
	v.clamp()
}

// bodyRows is how many rows show lines: all but the title, and the search
// line while there is one.
func (v *logView) bodyRows() int {
	rows := v.height - 1
	if v.typing || v.query != "" {
		rows--
	}
	return max(rows, 1)
}

// stampWidth is the width of a line's time column, when shown.
const stampWidth = len("15:04:05.000 ")

// textWidth is the width left for a line's text.
func (v *logView) textWidth() int {
	w := v.width
	if v.stamps {
		w -= stampWidth
	}
	return max(w, 1)
}

// rowsOf is how many rows line i takes.
func (v *logView) rowsOf(i int) int {
	if !v.wrap {
		return 1
	}
	n := cellWidth(v.lines[i].text)
	return max((n+v.textWidth()-1)/v.textWidth(), 1)
}

// lastShown is the index of the last line the body shows from top (at least
// partly).
func (v *logView) lastShown() int {
	rows, i := v.bodyRows(), v.top
	for ; i < len(v.lines); i++ {
		rows -= v.rowsOf(i)
		if rows <= 0 {
			return i
		}
	}
	return len(v.lines) - 1
}

// atEnd says whether the last line is shown whole.
func (v *logView) atEnd() bool {
	rows := v.bodyRows()
	for i := v.top; i < len(v.lines); i++ {
		rows -= v.rowsOf(i)
		if rows < 0 {
			return false
		}
	}
	return true
}

// toEnd shows the last lines: top is the first line from which the rest
// fits (the last line alone when it does not).
func (v *logView) toEnd() {
	rows, top := v.bodyRows(), len(v.lines)
	for top > 0 {
		rows -= v.rowsOf(top - 1)
		if rows < 0 {
			break
		}
		top--
	}
	v.top = min(top, max(len(v.lines)-1, 0))
}

// clamp keeps top in range: at the end when following, else never past
// the point where the end shows.
func (v *logView) clamp() {
	top := v.top
	v.toEnd()
	if !v.follow {
		v.top = min(max(top, 0), v.top)
	}
}

// scrollBy moves the view by n lines; leaving the end pauses following,
// reaching it resumes.
func (v *logView) scrollBy(n int) {
	v.follow = false
	v.top += n
	v.clamp()
	v.setFollow(v.atEnd())
}

func (v *logView) setFollow(on bool) {
	if on && !v.follow {
		v.unseen = 0
	}
	v.follow = on
	if on {
		v.toEnd()
	}
}

// handleKey handles a key in the logs view; handled is false for a key the
// dashboard handles (quit, help, back when there is no search to clear).
func (v *logView) handleKey(k *KeyMap, msg tea.KeyPressMsg) (handled bool) {
	if v.typing {
		v.typeKey(k, msg)
		return true
	}
	v.note = ""
	page := max(v.bodyRows()-1, 1)
	switch {
	case key.Matches(msg, logKeys.Search):
		v.typing, v.input = true, ""
		v.clamp()
	case key.Matches(msg, logKeys.Next) && v.query != "":
		v.step(1)
	case key.Matches(msg, logKeys.Prev) && v.query != "":
		v.step(-1)
	case key.Matches(msg, k.Back) && v.query != "":
		v.setQuery("")
	case key.Matches(msg, logKeys.Wrap):
		v.wrap, v.hscroll = !v.wrap, 0
		v.keepPlace()
	case key.Matches(msg, logKeys.Stamps):
		v.stamps = !v.stamps
		v.keepPlace()
	case key.Matches(msg, logKeys.Left) && !v.wrap:
		v.hscroll = max(v.hscroll-v.textWidth()/4, 0)
	case key.Matches(msg, logKeys.Right) && !v.wrap:
		if v.hscroll+v.textWidth() < v.widest() {
			v.hscroll += v.textWidth() / 4
		}
	case key.Matches(msg, logKeys.Follow):
		v.setFollow(true)
	case key.Matches(msg, k.Up):
		v.scrollBy(-1)
	case key.Matches(msg, k.Down):
		v.scrollBy(1)
	case key.Matches(msg, k.PageUp):
		v.scrollBy(-page)
	case key.Matches(msg, k.PageDown):
		v.scrollBy(page)
	case key.Matches(msg, k.Top):
		v.follow, v.top = false, 0
		v.setFollow(v.atEnd())
	case key.Matches(msg, k.Bottom):
		v.setFollow(true)
	default:
		return false
	}
	return true
}

// keepPlace keeps the view at the end after a change of layout, if it was.
func (v *logView) keepPlace() { v.clamp() }

// widest is the width of the widest line's text.
func (v *logView) widest() int {
	w := 0
	for _, l := range v.lines {
		w = max(w, cellWidth(l.text))
	}
	return w
}

// typeKey edits the search query being typed: enter searches, esc gives up.
func (v *logView) typeKey(k *KeyMap, msg tea.KeyPressMsg) {
	switch {
	case msg.Code == tea.KeyEnter:
		v.typing = false
		v.setQuery(v.input)
		if v.query != "" {
			v.step(0)
		}
	case key.Matches(msg, k.Back):
		v.typing = false
	case msg.Code == tea.KeyBackspace:
		if r := []rune(v.input); len(r) > 0 {
			v.input = string(r[:len(r)-1])
		}
	default:
		if t := msg.Text; t != "" && !strings.ContainsFunc(t, unicode.IsControl) {
			v.input += t
		}
	}
	v.clamp()
}

// setQuery makes q the search ("" ends it) and finds its matches.
func (v *logView) setQuery(q string) {
	v.query, v.matches, v.cur = q, nil, -1
	if q != "" {
		for i, l := range v.lines {
			if v.holds(l) {
				v.matches = append(v.matches, i)
			}
		}
	}
	v.keepPlace()
}

// holds says whether line l holds the query: ignoring case unless the
// query has a capital letter.
func (v *logView) holds(l logLine) bool {
	return !l.header && len(matchSpans(l.text, v.query)) > 0
}

// matchSpans are the byte ranges of q in s: ignoring case unless q has a
// capital letter (as less and vim's smartcase do).
func matchSpans(s, q string) [][2]int {
	if q == "" {
		return nil
	}
	hay := s
	if !strings.ContainsFunc(q, unicode.IsUpper) {
		hay, q = strings.ToLower(s), strings.ToLower(q)
		if len(hay) != len(s) { // a lower case of another length: match as typed
			hay = s
		}
	}
	var out [][2]int
	for from := 0; from <= len(hay)-len(q); {
		i := strings.Index(hay[from:], q)
		if i < 0 {
			break
		}
		out = append(out, [2]int{from + i, from + i + len(q)})
		from += i + len(q)
	}
	return out
}

// step moves to the next match (dir 1), the previous one (-1), or the first
// one from the top of the view (0), wrapping around the ends, and shows it.
func (v *logView) step(dir int) {
	if len(v.matches) == 0 {
		v.note = "no match"
		return
	}
	switch {
	case dir == 0 || v.cur < 0:
		v.cur = 0
		for v.cur < len(v.matches) && v.matches[v.cur] < v.top {
			v.cur++
		}
		if v.cur == len(v.matches) {
			v.cur, v.note = 0, "wrapped to the top"
		}
		if dir < 0 {
			v.cur = (v.cur - 1 + len(v.matches)) % len(v.matches)
		}
	case v.cur+dir >= len(v.matches):
		v.cur, v.note = 0, "wrapped to the top"
	case v.cur+dir < 0:
		v.cur, v.note = len(v.matches)-1, "wrapped to the end"
	default:
		v.cur += dir
	}
	v.show(v.matches[v.cur])
}

// show scrolls so that line i is in view (a third down the body when it was
// not), and scrolls sideways to its first match when lines are cut.
func (v *logView) show(i int) {
	if i < v.top || i > v.lastShown() || (i == v.lastShown() && !v.atEnd()) {
		v.follow = false
		v.top = max(i-v.bodyRows()/3, 0)
		v.clamp()
	}
	v.setFollow(v.atEnd())
	if !v.wrap {
		if sp := matchSpans(v.lines[i].text, v.query); len(sp) > 0 {
			col := cellWidth(v.lines[i].text[:sp[0][0]])
			if col < v.hscroll || col+cellWidth(v.query) > v.hscroll+v.textWidth() {
				v.hscroll = max(col-v.textWidth()/4, 0)
			}
		}
	}
}

// state is the title's account of the stream: following, paused (and what
// arrived since), or over.
func (v *logView) state() string {
	switch {
	case v.err != nil:
		return "ended: " + v.err.Error()
	case v.kept:
		return "kept log · container removed"
	case v.ended:
		return "ended"
	case v.follow:
		return "following"
	case v.unseen == 1:
		return "paused, 1 new line"
	case v.unseen > 0:
		return "paused, " + strconv.Itoa(v.unseen) + " new lines"
	}
	return "paused"
}

// position is where the view is: the last line shown of all of them.
func (v *logView) position() string {
	if len(v.lines) == 0 {
		return ""
	}
	s := strconv.Itoa(v.lastShown()+1) + "/" + strconv.Itoa(len(v.lines))
	if !v.wrap && v.hscroll > 0 {
		s += " · col " + strconv.Itoa(v.hscroll+1)
	}
	return s
}

// helpKeys are the keys that do something in the logs view now.
func (v *logView) helpKeys(k *KeyMap) []key.Binding {
	if v.typing {
		return []key.Binding{
			key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "search")),
			key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
		}
	}
	with := func(b key.Binding, desc string) key.Binding {
		b.SetHelp(b.Help().Key, desc)
		return b
	}
	var out []key.Binding
	if !v.follow && !v.ended && !v.kept {
		out = append(out, logKeys.Follow)
	}
	if len(v.lines) > 0 {
		out = append(out, logKeys.Search)
	}
	if len(v.matches) > 0 {
		out = append(out, logKeys.Next)
	}
	if v.wrap {
		out = append(out, with(logKeys.Wrap, "no wrap"))
	} else {
		out = append(out, logKeys.Wrap)
		if v.widest() > v.textWidth() {
			out = append(out, logKeys.Left)
		}
	}
	if v.hasStamps() {
		if v.stamps {
			out = append(out, with(logKeys.Stamps, "no times"))
		} else {
			out = append(out, logKeys.Stamps)
		}
	}
	if v.query != "" {
		return append(out, with(k.Back, "clear search"))
	}
	return append(out, with(k.Back, "back"))
}

// fullHelp is every key of the logs view, for the help box.
func (v *logView) fullHelp(k *KeyMap) [][]key.Binding {
	with := func(b key.Binding, desc string) key.Binding {
		b.SetHelp(b.Help().Key, desc)
		return b
	}
	return [][]key.Binding{
		{logKeys.Search, with(logKeys.Next, "next/previous match"), with(k.Back, "end search, back")},
		{with(logKeys.Wrap, "wrap on/off"), with(logKeys.Left, "scroll sideways"), with(logKeys.Stamps, "times on/off"), logKeys.Follow},
		{k.Up, k.Down, k.PageUp, k.PageDown, with(k.Top, "first line"), with(k.Bottom, "last line, follow")},
		{k.Help, k.Quit},
	}
}

// hasStamps says whether any line has its time.
func (v *logView) hasStamps() bool {
	for _, l := range v.lines {
		if !l.at.IsZero() {
			return true
		}
	}
	return false
}

func (v *logView) view(focused bool) []string {
	st := v.c.styles
	right := v.state()
	if p := v.position(); p != "" {
		right += " · " + p
	}
	lines := []string{joinEnds(st.paneTitle("logs · "+v.label, focused), st.Dim.Render(right+" "), v.width)}
	rows := v.bodyRows()
	if len(v.lines) == 0 {
		msg := "waiting for output…"
		if v.ended {
			msg = "no output"
		}
		lines = append(lines, fit(st.Dim.Render("  "+msg), v.width))
	}
	for i := v.top; i < len(v.lines) && len(lines) < rows+1; i++ {
		for _, r := range v.render(i) {
			if len(lines) == rows+1 {
				break
			}
			lines = append(lines, r)
		}
	}
	for len(lines) < rows+1 {
		lines = append(lines, spaces(v.width))
	}
	if v.typing || v.query != "" {
		lines = append(lines, v.searchLine())
	}
	return lines
}

// render draws line i: its rows (wrapped, or cut at the sideways scroll),
// each the view's width, its time before the first when times are shown,
// and the query's matches highlighted.
func (v *logView) render(i int) []string {
	st := v.c.styles
	l := v.lines[i]
	if l.header {
		return []string{fit(keptHeaderStyle.Render(l.text), v.width)}
	}
	text := v.highlight(l.text, v.cur >= 0 && v.matches[v.cur] == i)
	tw := v.textWidth()
	var rows []string
	if v.wrap {
		n := cellWidth(l.text)
		for from := 0; from < n || from == 0; from += tw {
			rows = append(rows, ansi.Cut(text, from, from+tw))
		}
	} else {
		rows = []string{ansi.Cut(text, v.hscroll, v.hscroll+tw)}
	}
	for j := range rows {
		prefix := ""
		if v.stamps {
			prefix = spaces(stampWidth)
			if j == 0 && !l.at.IsZero() {
				prefix = st.Dim.Render(l.at.UTC().Format("15:04:05.000")) + " "
			}
		}
		rows[j] = fit(prefix+rows[j], v.width)
	}
	return rows
}

// highlight styles the query's matches in text (the current match's line
// in the stronger style).
func (v *logView) highlight(text string, current bool) string {
	spans := matchSpans(text, v.query)
	if len(spans) == 0 {
		return text
	}
	style := matchStyle
	if current {
		style = curMatchStyle
	}
	var b strings.Builder
	at := 0
	for _, sp := range spans {
		b.WriteString(text[at:sp[0]])
		b.WriteString(style.Render(text[sp[0]:sp[1]]))
		at = sp[1]
	}
	b.WriteString(text[at:])
	return b.String()
}

// searchLine is the pane's last row while searching: the query being typed,
// or the search in effect and where its current match is.
func (v *logView) searchLine() string {
	st := v.c.styles
	if v.typing {
		return fit(" /"+v.input+"█", v.width)
	}
	s := " search " + strconv.Quote(v.query) + " · "
	switch {
	case len(v.matches) == 0:
		s += "no match"
	case v.cur < 0:
		s += strconv.Itoa(len(v.matches)) + " matches"
	default:
		s += "match " + strconv.Itoa(v.cur+1) + "/" + strconv.Itoa(len(v.matches))
	}
	if v.note != "" && len(v.matches) > 0 {
		s += " · " + v.note
	}
	return fit(st.Flash.Render(s), v.width)
}

// logSource says where deployment d's logs come from: its running container
// (live), the log the daemon kept when it removed the container, or nowhere.
// The detail view says so instead of offering a container that is gone.
func logSource(d *api.Deployment, now time.Time) (live bool, where string) {
	running := inProgress(d.Status) || d.Status == "ACTIVE" || d.Status == "DRAINING" ||
		(d.WarmUntil != nil && now.Before(*d.WarmUntil))
	switch {
	case d.ContainerID != "" && running:
		return true, shortID(d.ContainerID)
	case d.LogsKeptAt != nil:
		return false, "kept from removed container " + shortID(d.ContainerID) + " (removed " + age(now, *d.LogsKeptAt) + " ago)"
	case d.ContainerID != "":
		return false, "none: container " + shortID(d.ContainerID) + " was removed, no log kept"
	default:
		return false, "none: no container ran"
	}
}
