package ui

import (
	"context"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/spinner"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/clank-dev/clank/api"
)

// pane is where the keyboard focus is: the services, or the right-hand side
// (deployments, a deployment's detail, or logs).
type pane int

const (
	paneServices pane = iota
	paneRight
)

// rightView is what the right-hand side shows.
type rightView int

const (
	showDeployments rightView = iota
	showDetail
	showLogs
)

// Messages of the header and the services list.
type (
	statusMsg struct {
		status api.Status
		err    error
	}
	servicesMsg struct {
		services []api.Service
		err      error
	}
)

// Model is the dashboard. It is a tea.Model: run it with NewProgram or Run.
type Model struct {
	c      *common
	cancel context.CancelFunc

	status    api.Status
	statusErr error

	services servicesList
	deps     deploymentsTable
	detail   detailView
	logs     logView
	live     subscription

	focus     pane
	right     rightView
	logsFrom  rightView
	modal     *actionModal
	modalSeq  int
	showHelp  bool
	filtering bool
	filter    filterInput
	// commanding: the `:` prompt is open (command.go).
	commanding bool
	command    commandInput
	help       help.Model
	spinner    spinner.Model
	spinning   bool
	clock      clock
	flash      string

	width, height int
	// leftWidth and bodyHeight are the panes' size as last laid out.
	leftWidth, bodyHeight int
	// banner is Options.Banner until the first key.
	banner []string
}

// New builds the dashboard for a Backend. Its Backend calls, the event
// subscription included, end with opts.Context or when the user quits.
func New(backend Backend, opts Options) *Model {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancel(opts.Context)
	c := &common{ctx: ctx, backend: backend, opts: opts, styles: DefaultStyles(), keys: DefaultKeyMap()}
	sp := spinner.New(spinner.WithSpinner(spinner.Spinner{Frames: spinner.MiniDot.Frames, FPS: spinInterval}))
	c.spin = sp.Spinner.Frames[0]
	h := help.New()
	h.Styles = c.styles.Help
	m := &Model{
		c:        c,
		cancel:   cancel,
		services: newServicesList(c),
		deps:     newDeploymentsTable(c),
		detail:   newDetailView(c),
		logs:     newLogView(c),
		live:     subscription{c: c},
		help:     h,
		spinner:  sp,
		banner:   opts.Banner,
	}
	m.setSize(opts.Width, opts.Height)
	return m
}

// Init loads the header and the services and subscribes to the event stream.
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.loadStatus(), m.loadServices(), m.services.loadTraffic(), m.live.start(), m.loadStats())
}

func (m *Model) loadStatus() tea.Cmd {
	ctx, b := m.c.ctx, m.c.backend
	return func() tea.Msg {
		s, err := b.Status(ctx)
		return statusMsg{status: s, err: err}
	}
}

func (m *Model) loadServices() tea.Cmd {
	ctx, b := m.c.ctx, m.c.backend
	return func() tea.Msg {
		s, err := b.Services(ctx)
		return servicesMsg{services: s, err: err}
	}
}

// Update applies a message and returns what to do next.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	if after := m.afterUpdate(); after != nil {
		cmd = tea.Batch(cmd, after)
	}
	return m, cmd
}

// afterUpdate lays the panes out for what the update changed and arms the
// spinner's and the clock's ticks if what is on screen now needs them.
func (m *Model) afterUpdate() tea.Cmd {
	m.layoutPanes()
	var cmds []tea.Cmd
	if spin := m.startSpinner(); spin != nil {
		cmds = append(cmds, spin)
	}
	if wait := m.relativeTimesWait(); wait > 0 {
		if tick := m.clock.arm(wait); tick != nil {
			cmds = append(cmds, tick)
		}
	}
	return tea.Batch(cmds...)
}

// relativeTimesWait is how long until a relative time on screen (an age, a
// countdown) shows another text; 0 when none is on screen.
func (m *Model) relativeTimesWait() time.Duration {
	now := m.c.now()
	var wait time.Duration
	if m.rightShown() && m.right == showDeployments {
		wait = m.deps.relativeTimesWait(now)
	}
	if m.rightShown() && m.right == showDetail {
		if w := m.detail.relativeTimesWait(now); w > 0 {
			wait = soonest(wait, w)
		}
	}
	if m.leftShown() {
		if w := m.services.trafficWait(now); w > 0 {
			wait = soonest(wait, w)
		}
	}
	if m.modal != nil {
		if t := m.modal.plan.Target; t != nil {
			wait = soonest(wait, nextChange(now.Sub(t.CreatedAt)))
		}
	}
	return wait
}

// rightShown and leftShown report whether each side is on screen.
func (m *Model) rightShown() bool { return m.wide() || m.focus == paneRight }
func (m *Model) leftShown() bool  { return m.wide() || m.focus == paneServices }

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.setSize(msg.Width, msg.Height)
	case tea.KeyPressMsg:
		return m.handleKey(msg)
	case tea.MouseClickMsg, tea.MouseWheelMsg:
		return m.handleMouse(msg.(tea.MouseMsg))
	case statusMsg:
		m.status, m.statusErr = msg.status, msg.err
	case servicesMsg:
		if msg.err != nil {
			m.services.err = msg.err
			return nil
		}
		m.services.err = nil
		m.services.setServices(msg.services)
		if m.deps.service == "" {
			if r := m.services.selected(); r != nil {
				return m.deps.open(r.Name)
			}
		}
	case trafficMsg:
		return m.services.applyTraffic(msg)
	case statsMsg:
		return m.applyStats(msg)
	case statsTickMsg:
		return m.onStatsTick()
	case pageMsg:
		return m.deps.applyPage(msg)
	case refreshMsg:
		m.deps.applyRefresh(msg)
		return nil
	case subscribedMsg:
		return m.live.subscribed(msg)
	case eventsMsg:
		if msg.gen != m.live.gen {
			return nil
		}
		cmd := m.applyEvents(msg.events)
		if msg.closed {
			return tea.Batch(cmd, m.live.lostStream())
		}
		return tea.Batch(cmd, m.live.next())
	case resubscribeMsg:
		return tea.Batch(m.live.start(), m.loadStatus(), m.loadServices(), m.services.loadTraffic(), m.reloadDeployments())
	case detailMsg:
		m.detail.apply(msg)
	case detailCertsMsg:
		m.detail.applyCerts(msg)
	case logChunkMsg:
		return m.logs.apply(msg)
	case logEndMsg:
		m.logs.end(msg)
	case planMsg:
		if m.modal != nil {
			m.modal.applyPlan(msg)
		}
	case actMsg:
		if m.modal != nil {
			m.modal.applyAct(msg)
		}
	case deletedMsg:
		if m.modal != nil {
			m.modal.applyDeleted(msg)
		}
	case unfrozenMsg:
		if msg.err != nil {
			m.flash = "unfreeze " + msg.service + ": " + msg.err.Error()
			return nil
		}
		m.flash = msg.service + " unfrozen: pushes deploy it again"
		return m.loadServices()
	case clockTickMsg:
		m.clock.fired(msg) // the frame drawn after it shows the new times
	case spinner.TickMsg:
		if !m.anyInProgress() {
			m.spinning = false
			return nil
		}
		var cmd tea.Cmd
		m.spinner, cmd = m.spinner.Update(msg)
		m.c.spin = m.spinner.View() // unstyled: the frame itself
		if m.right == showDetail && m.detail.inProgress() {
			m.detail.refresh()
		}
		return cmd
	}
	return nil
}

// spinInterval is how long a spinner frame shows. Each frame redraws the
// whole screen (about 1 ms of CPU at 160x40, most of it Bubble Tea's
// renderer), once per session: at the spinner's own 12 frames a second, 50
// SSH sessions spent most of a core for as long as a deployment ran
// (BENCHMARKS.md).
const spinInterval = time.Second / 4

// startSpinner starts the spinner when something is in progress; it stops by
// itself (the tick is dropped) once nothing is.
func (m *Model) startSpinner() tea.Cmd {
	if m.spinning || !m.anyInProgress() {
		return nil
	}
	m.spinning = true
	// The first frame waits its turn too: an immediate one would cost every
	// session a second frame right when the change that started it is drawn.
	return tea.Tick(spinInterval, func(time.Time) tea.Msg { return m.spinner.Tick() })
}

func (m *Model) anyInProgress() bool {
	if m.modal != nil && m.modal.busy() {
		return true
	}
	if m.services.anyInProgress() {
		return true
	}
	if m.right == showDetail && m.detail.inProgress() {
		return true
	}
	t := &m.deps
	for i := t.top; i < t.len() && i < t.top+t.visibleRows(); i++ {
		if inProgress(t.at(i).Status) {
			return true
		}
	}
	return false
}

// applyEvents folds a batch of live events into what is on screen: rows
// change in place, nothing is re-read.
func (m *Model) applyEvents(events []api.Event) tea.Cmd {
	var reload, refresh, certs, traffic, status bool
	for i := range events {
		ev := events[i]
		if d := ev.Deployment; d != nil {
			if _, unknown := m.services.applyDeployment(d); unknown {
				reload = true
			}
			m.deps.applyDeployment(d)
		}
		if ev.Type == "service" {
			reload = true
		}
		switch ev.Type {
		case "availability":
			refresh = true
		case "traffic":
			traffic = true
		case "docker":
			// Said at once; the header's other parts are read again.
			m.status.DockerUp = ev.Status == "up"
			if ev.Status == "up" {
				m.status.Docker = "ok"
			} else {
				m.status.Docker = orDash(ev.Message)
			}
			at := ev.At
			m.status.DockerSince = &at
			status = true
		}
		if ev.Type == api.EventCertificate && m.detail.dep != nil && ev.Service == m.detail.dep.Service {
			certs = true
		}
		m.detail.applyEvent(ev)
		if m.modal != nil {
			m.modal.observe(ev)
		}
	}
	var cmds []tea.Cmd
	if reload {
		// A service was created or changed: its configuration is not in the
		// event, so the list is fetched again (statuses never are).
		cmds = append(cmds, m.loadServices())
	}
	if refresh {
		// An image's availability changed: the badges on screen are read again.
		cmds = append(cmds, m.deps.refresh())
	}
	if certs {
		cmds = append(cmds, m.detail.reloadCerts())
	}
	if traffic {
		cmds = append(cmds, m.services.loadTraffic())
	}
	if status {
		cmds = append(cmds, m.loadStatus())
	}
	return tea.Batch(cmds...)
}

// reloadDeployments fetches the shown service's deployments again, from the
// newest (after the event stream was lost and came back).
func (m *Model) reloadDeployments() tea.Cmd {
	if m.deps.service == "" {
		return nil
	}
	return m.deps.restart(pageNewest)
}

func (m *Model) wide() bool { return m.width >= wideWidth }

// setSize lays the screen out: a header line, the body, a footer line.
func (m *Model) setSize(w, h int) {
	m.width, m.height = max(w, 20), max(h, 6)
	m.help.SetWidth(m.width)
	m.leftWidth = -1
	m.layoutPanes()
}

// layoutPanes sizes the panes. Side by side, the services get the room
// their columns want, up to 40% of the width beside the deployments, 30%
// beside a detail or logs (at least 32 cells); the right-hand side the rest.
func (m *Model) layoutPanes() {
	body := max(m.height-2-m.bannerHeight(), 3)
	left, right := m.width, m.width
	if m.wide() {
		share := 40 // the deployments table needs its room too
		if m.right != showDeployments {
			share = 30 // a detail's or a log's lines are long
		}
		left = min(max(m.services.naturalWidth(), 32), max(m.width*share/100, 32))
		right = m.width - left - 1
	}
	if left == m.leftWidth && body == m.bodyHeight {
		return
	}
	m.leftWidth, m.bodyHeight = left, body
	m.services.setSize(left, body)
	m.deps.setSize(right, body)
	m.detail.setSize(right, body)
	m.logs.setSize(right, body)
}

// quit ends the program and everything it started.
func (m *Model) quit() tea.Cmd {
	m.logs.stop()
	m.cancel()
	return tea.Quit
}

func (m *Model) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.c.keys
	if msg.String() == "ctrl+c" {
		return m.quit()
	}
	if m.modal != nil {
		closed, cmd := m.modal.handleKey(msg)
		if closed {
			m.modal = nil
		}
		return cmd
	}
	if m.showHelp {
		m.showHelp = false
		if key.Matches(msg, k.Quit) {
			return m.quit()
		}
		return nil
	}
	if m.filtering {
		return m.handleFilterKey(msg)
	}
	if m.commanding {
		return m.handleCommandKey(msg)
	}
	if m.banner != nil {
		// The first key hides the banner; esc does only that.
		m.banner = nil
		m.layoutPanes()
		if key.Matches(msg, k.Back) {
			return nil
		}
	}
	m.flash = ""
	if m.focus == paneRight && m.right == showLogs && m.logs.handleKey(k, msg) {
		return nil
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m.quit()
	case key.Matches(msg, k.Help):
		m.showHelp = true
	case key.Matches(msg, k.Filter):
		if m.focus == paneRight && m.right == showDetail {
			m.flash = "/ filters the lists: esc goes back to the deployments"
			return nil
		}
		if m.focus == paneRight && m.right != showDeployments {
			return nil
		}
		m.filtering = true
		m.filter.value = m.currentFilter()
	case key.Matches(msg, k.Command):
		m.commanding = true
		m.command.value = ""
	case key.Matches(msg, k.CopyID):
		return m.copyID()
	case key.Matches(msg, k.CopyDigest):
		return m.copyDigest()
	case key.Matches(msg, k.Sort), key.Matches(msg, k.SortReverse):
		m.sortDeployments(key.Matches(msg, k.SortReverse))
	case key.Matches(msg, k.Switch):
		return m.switchPane()
	case key.Matches(msg, k.Back):
		return m.back()
	case key.Matches(msg, k.Open):
		return m.open()
	case key.Matches(msg, k.Logs):
		return m.openLogs()
	case key.Matches(msg, k.Rollback):
		return m.act("rollback")
	case key.Matches(msg, k.Redeploy):
		return m.act("redeploy")
	case key.Matches(msg, k.Deploy):
		return m.act("deploy")
	case key.Matches(msg, k.Unfreeze):
		return m.unfreeze()
	case key.Matches(msg, k.DeleteService):
		return m.act(kindDelete)
	default:
		return m.navigate(msg)
	}
	return nil
}

func (m *Model) currentFilter() string {
	if m.focus == paneServices {
		return m.services.filter
	}
	return m.deps.filter
}

func (m *Model) handleFilterKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.c.keys
	before := m.services.selectedName()
	switch {
	case key.Matches(msg, k.Back):
		m.filter.value = ""
		m.applyFilter()
		m.filtering = false
	case key.Matches(msg, k.Open):
		m.filtering = false
	default:
		if m.filter.handle(msg) {
			m.applyFilter()
		}
	}
	if m.focus == paneServices {
		return m.followSelection(before)
	}
	return m.deps.maybeFetch()
}

func (m *Model) applyFilter() {
	if m.focus == paneServices {
		m.services.setFilter(m.filter.value)
		return
	}
	m.deps.setFilter(m.filter.value)
}

func (m *Model) navigate(msg tea.KeyPressMsg) tea.Cmd {
	k := m.c.keys
	if m.focus == paneRight {
		switch m.right {
		case showDetail:
			m.detail.scroll(k, msg)
			return nil
		case showLogs:
			return nil // the logs view has its own keys (handleKey)
		}
		t := &m.deps
		page := t.visibleRows()
		switch {
		case key.Matches(msg, k.Up):
			return t.move(-1)
		case key.Matches(msg, k.Down):
			return t.move(1)
		case key.Matches(msg, k.PageUp):
			return t.move(-page)
		case key.Matches(msg, k.PageDown):
			return t.move(page)
		case key.Matches(msg, k.Top):
			return t.toNewest()
		case key.Matches(msg, k.Bottom):
			return t.toOldest()
		}
		return nil
	}
	l := &m.services
	before := l.selectedName()
	switch {
	case key.Matches(msg, k.Up):
		l.move(-1)
	case key.Matches(msg, k.Down):
		l.move(1)
	case key.Matches(msg, k.PageUp):
		l.move(-l.visibleRows())
	case key.Matches(msg, k.PageDown):
		l.move(l.visibleRows())
	case key.Matches(msg, k.Top):
		l.move(-len(l.rows))
	case key.Matches(msg, k.Bottom):
		l.move(len(l.rows))
	}
	return m.followSelection(before)
}

// followSelection shows the newly selected service's deployments beside the
// list, when they are side by side.
func (m *Model) followSelection(before string) tea.Cmd {
	name := m.services.selectedName()
	if !m.wide() || name == before || name == "" {
		return nil
	}
	m.right = showDeployments
	m.logs.stop()
	return m.deps.open(name)
}

// sortDeployments sorts the deployments table by its next column, or the
// other way round; the cursor stays on its deployment.
func (m *Model) sortDeployments(reverse bool) {
	if m.focus != paneRight || m.right != showDeployments {
		m.flash = "s and S sort the deployments: open a service's deployments first"
		return
	}
	s := m.deps.sort.next()
	if reverse {
		s = m.deps.sort.reverse()
	}
	m.deps.setSort(s)
}

// switchPane moves the focus between the services and the right-hand side.
func (m *Model) switchPane() tea.Cmd {
	if m.focus == paneRight {
		m.focus = paneServices
		return nil
	}
	return m.openService()
}

// openService focuses the selected service's deployments.
func (m *Model) openService() tea.Cmd {
	r := m.services.selected()
	if r == nil {
		return nil
	}
	m.focus = paneRight
	if m.deps.service == r.Name && m.right == showDeployments {
		return nil
	}
	m.right = showDeployments
	m.logs.stop()
	return m.deps.open(r.Name)
}

func (m *Model) open() tea.Cmd {
	if m.focus == paneServices {
		return m.openService()
	}
	if m.right == showDeployments {
		if d := m.deps.selected(); d != nil {
			m.right = showDetail
			return m.detail.open(d)
		}
	}
	return nil
}

func (m *Model) back() tea.Cmd {
	switch {
	case m.focus == paneServices:
		if m.services.filter != "" {
			m.services.setFilter("")
		}
	case m.right == showLogs:
		m.logs.stop()
		m.right = m.logsFrom
	case m.right == showDetail:
		m.right = showDeployments
	case m.deps.filter != "":
		m.deps.setFilter("")
	default:
		m.focus = paneServices
	}
	return nil
}

// openLogs follows the logs of the deployment in view: the selected one, the
// one in detail, or the service's active one from the services list.
func (m *Model) openLogs() tea.Cmd {
	var service, id, label string
	switch {
	case m.focus == paneServices:
		r := m.services.selected()
		if r == nil {
			return nil
		}
		service, label = r.Name, r.Name+" (active)"
	case m.right == showDetail && m.detail.dep != nil:
		service, id, label = m.detail.dep.Service, m.detail.dep.ID, m.detail.dep.Service+" #"+strconv.Itoa(m.detail.dep.Number)
	case m.right == showDeployments:
		d := m.deps.selected()
		if d == nil {
			if m.deps.filter != "" {
				m.flash = "no deployment selected: the filter matches none (esc clears it)"
			}
			return nil
		}
		service, id, label = d.Service, d.ID, d.Service+" #"+strconv.Itoa(d.Number)
	default:
		return nil
	}
	if m.right != showLogs {
		m.logsFrom = m.right
	}
	m.focus, m.right = paneRight, showLogs
	return m.logs.open(service, id, label)
}

// act opens the confirmation modal for a rollback, redeploy or deploy of
// what is selected.
func (m *Model) act(kind string) tea.Cmd {
	var service string
	var target *api.Deployment
	switch {
	case m.focus == paneServices:
		r := m.services.selected()
		if r == nil {
			return nil
		}
		service = r.Name
	case m.right == showDetail && m.detail.dep != nil:
		service, target = m.detail.dep.Service, m.detail.dep
	default:
		service, target = m.deps.service, m.deps.selected()
		if target == nil && kind != "deploy" && kind != kindDelete && m.deps.len() == 0 && m.deps.filter != "" {
			m.flash = "no deployment selected: the filter matches none (esc clears it)"
			return nil
		}
	}
	if service == "" {
		return nil
	}
	req := api.ActionRequest{Kind: kind, Service: service}
	var what string
	switch kind {
	case "rollback":
		what = "Roll back " + service
		if target != nil {
			req.Deployment = target.ID
			what += " to #" + strconv.Itoa(target.Number)
		} else {
			what += " to the previous deployment"
		}
	case "redeploy":
		if target == nil {
			r := m.services.find(service)
			if r == nil || r.ActiveDeploymentID == nil {
				m.flash = "nothing to redeploy: " + service + " has no ACTIVE deployment"
				return nil
			}
			req.Deployment = *r.ActiveDeploymentID
			what = "Redeploy " + service + " (the ACTIVE deployment)"
		} else {
			req.Deployment = target.ID
			what = "Redeploy " + service + " #" + strconv.Itoa(target.Number) + " with the current config"
		}
	case kindDelete:
		what = "Delete service " + service
	default:
		what = "Deploy " + service + " (its current image and config)"
	}
	m.modalSeq++
	var cmd tea.Cmd
	m.modal, cmd = newModal(m.c, m.modalSeq, req, what)
	if r := m.services.find(service); r != nil && kind == "deploy" {
		svc := r.Service
		m.modal.svc = &svc
	}
	return cmd
}

// unfrozenMsg answers an unfreeze.
type unfrozenMsg struct {
	service string
	err     error
}

// unfreeze lets pushes deploy the service in view again: admins only, and
// only a frozen one (the daemon has the last word either way).
func (m *Model) unfreeze() tea.Cmd {
	service := m.services.selectedName()
	if m.focus == paneRight && m.deps.service != "" {
		service = m.deps.service
	}
	r := m.services.find(service)
	switch {
	case r == nil:
		return nil
	case !m.c.admin():
		m.flash = readOnlyReason + ": ask an admin to unfreeze " + service
		return nil
	case !r.Frozen:
		m.flash = service + " is not frozen: pushes deploy it"
		return nil
	}
	ctx, b, by := m.c.ctx, m.c.backend, m.c.opts.Actor
	return func() tea.Msg {
		_, err := b.Unfreeze(ctx, service, by)
		return unfrozenMsg{service: service, err: err}
	}
}

// View draws the whole screen.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	// Clicks and the wheel (mouse.go); selecting text then takes shift.
	v.MouseMode = tea.MouseModeCellMotion
	v.WindowTitle = "clank · " + m.host()
	return v
}

func (m *Model) render() string {
	header := m.header()
	banner := m.bannerLines()
	left, right := m.body()
	footer := m.footerLine()
	screen := joinScreen(header, banner, left, right, m.c.styles.paints.separator, footer)
	switch {
	case m.modal != nil:
		screen = overlay(screen, m.modal.view(m.width, m.height), m.width, m.height)
	case m.showHelp:
		screen = overlay(screen, m.helpBox(), m.width, m.height)
	}
	return screen
}

// body is the panes' lines: the left's and the right's side by side, or
// only one of them (nil, the other).
func (m *Model) body() (left, right []string) {
	focusRight := m.focus == paneRight
	if m.wide() || !focusRight {
		left = m.services.view(!focusRight)
	}
	if m.wide() || focusRight {
		switch m.right {
		case showDetail:
			right = m.detail.view(focusRight)
		case showLogs:
			right = m.logs.view(focusRight)
		default:
			// With the services focused, the row r would roll back to is
			// marked.
			var target int
			if !focusRight && m.c.admin() {
				if t := m.rollbackTarget(m.services.selectedName()); t != nil {
					target = t.Number
				}
			}
			right = m.deps.view(focusRight, target)
		}
	}
	return left, right
}

// bannerHeight is how many lines the banner takes: its lines and a last
// one that says how it goes, at most half the screen.
func (m *Model) bannerHeight() int {
	if len(m.banner) == 0 {
		return 0
	}
	return min(len(m.banner)+1, (m.height-2)/2)
}

func (m *Model) bannerLines() []string {
	n := m.bannerHeight()
	if n == 0 {
		return nil
	}
	st := m.c.styles
	out := make([]string, 0, n)
	for _, l := range m.banner[:n-1] {
		out = append(out, fit(st.Flash.Render(" "+l), m.width))
	}
	return append(out, fit(st.Dim.Render(" "+strings.Repeat("─", 3)+" any key hides this"), m.width))
}

func (m *Model) host() string {
	if m.c.opts.Host != "" {
		return m.c.opts.Host
	}
	if m.status.Host != "" {
		return m.status.Host
	}
	return "clank"
}

// headerLine: the host and the state of the engine, registry and router on
// the left; who is looking, and as what, on the right. When room is short
// the role always shows, the actor is shortened, and the addresses go.
// What it shows comes from headerKey's fields alone: frames keep the line
// until one of them changes (m.header).
func (m *Model) headerLine() string {
	st := m.c.styles
	left := st.Logo.Render("clank") + "  " + lipgloss.NewStyle().Bold(true).Render(m.host())
	var extras []string
	s := m.status
	switch {
	case m.statusErr != nil:
		extras = append(extras, st.HeaderBad.Render("daemon: "+m.statusErr.Error()))
	case s.Docker == "ok":
		extras = append(extras, st.HeaderOK.Render("docker up"))
	case s.Docker != "":
		// Why is in the daemon's log and on `clank status`; here, that it is.
		extras = append(extras, st.HeaderBad.Render("docker down"))
	}
	if s.Docker != "" {
		extras = append(extras, st.HeaderText.Render("registry "+orDash(s.Registry)),
			st.HeaderText.Render("router "+orDash(s.Router)))
		if s.SSH != "" {
			extras = append(extras, st.HeaderText.Render("ssh "+s.SSH))
		}
	}
	if len(extras) > 0 {
		left += "  " + extras[0]
		extras = extras[1:]
	}
	right := st.Role.Render(string(m.c.opts.Role)) + " "
	if actor := shortFingerprint(m.c.opts.Actor); actor != "" {
		if room := m.width - cellWidth(left) - cellWidth(right) - 3; room >= 8 {
			right = st.HeaderText.Render(ansi.Truncate(actor, room, "…")) + " " + right
		}
	}
	for _, e := range extras {
		if cellWidth(left)+2+cellWidth(e)+cellWidth(right)+1 > m.width {
			break
		}
		left += "  " + e
	}
	return joinEnds(left, right, m.width)
}

func (m *Model) footerLine() string {
	st := m.c.styles
	switch {
	case m.filtering:
		return m.filter.view(st, m.width)
	case m.commanding:
		return m.commandLine()
	case m.flash != "":
		return fit(st.Flash.Render(" "+m.flash), m.width)
	case m.live.lost:
		return fit(st.Error.Render(" event stream lost: reconnecting…"), m.width)
	case m.modal != nil:
		// The modal has the keys: its own, and ctrl+c.
		quit := key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit"))
		return fit(" "+m.help.ShortHelpView(append(m.modal.keys(), quit)), m.width)
	}
	return m.keysLine()
}

func (m *Model) helpBox() string {
	st := m.c.styles
	h := m.help
	h.ShowAll = true
	groups := m.c.keys.screenHelp().FullHelp()
	if m.focus == paneRight && m.right == showLogs {
		groups = m.logs.fullHelp(m.c.keys)
	}
	body := st.ModalTitle.Render("Keys") + "\n\n" + h.FullHelpView(groups)
	body += "\n\n" + st.Dim.Render("mouse: click selects, the wheel scrolls; shift+drag selects text")
	if !m.c.admin() {
		body += "\n\n" + st.Dim.Render(readOnlyReason+": r, R, d, u and D only explain")
	}
	return st.Modal.Render(body)
}

// overlay draws box centred over screen with the compositor. The result is
// the screen's size exactly: the compositor drops a line's trailing blanks
// and grows to hold a box taller than the screen.
func overlay(screen, box string, w, h int) string {
	bw, bh := lipgloss.Width(box), lipgloss.Height(box)
	x, y := max((w-bw)/2, 0), max((h-bh)/2, 0)
	if x < 4 {
		// A box nearly as wide as the screen: the rows it covers are
		// blanked, so that no cell of them shows beside its edges.
		lines := strings.Split(screen, "\n")
		for i := y; i < min(y+bh, len(lines)); i++ {
			lines[i] = spaces(w)
		}
		screen = strings.Join(lines, "\n")
	}
	out := strings.Split(lipgloss.NewCompositor(
		lipgloss.NewLayer(screen),
		lipgloss.NewLayer(box).X(x).Y(y).Z(1),
	).Render(), "\n")
	out = out[:min(len(out), h)]
	for i := range out {
		out[i] = fit(out[i], w)
	}
	return strings.Join(out, "\n")
}
