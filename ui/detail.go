package ui

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"

	"github.com/clank-dev/clank/api"
)

// detailMsg answers the request for one deployment and its events.
type detailMsg struct {
	id     string
	dep    api.Deployment
	events []api.Event
	certs  []api.Certificate
	err    error
}

// detailCertsMsg brings the certificates again after one of them changed.
type detailCertsMsg struct {
	id    string
	certs []api.Certificate
}

// detailView is one deployment: its snapshot (env values masked) and its
// lifecycle events, kept live from the event stream.
type detailView struct {
	c       *common
	id      string
	dep     *api.Deployment
	events  []api.Event
	certs   []api.Certificate // of every domain (HTTPS on); the deployment's are shown
	loading bool
	err     error

	vp            viewport.Model
	width, height int
}

func newDetailView(c *common) detailView {
	return detailView{c: c, vp: viewport.New()}
}

// open shows a deployment; the row's copy is drawn until the full one comes.
func (v *detailView) open(d *api.Deployment) tea.Cmd {
	cp := *d
	v.id, v.dep, v.events, v.certs, v.err, v.loading = d.ID, &cp, nil, nil, nil, true
	v.vp.GotoTop()
	v.refresh()
	ctx, b, id := v.c.ctx, v.c.backend, d.ID
	return func() tea.Msg {
		dep, events, err := b.Deployment(ctx, id)
		certs, _ := b.Certificates(ctx) // none to show if it fails
		return detailMsg{id: id, dep: dep, events: events, certs: certs, err: err}
	}
}

// reloadCerts fetches the certificates again (one of them changed).
func (v *detailView) reloadCerts() tea.Cmd {
	ctx, b, id := v.c.ctx, v.c.backend, v.id
	return func() tea.Msg {
		certs, _ := b.Certificates(ctx)
		return detailCertsMsg{id: id, certs: certs}
	}
}

func (v *detailView) applyCerts(msg detailCertsMsg) {
	if msg.id == v.id {
		v.certs = msg.certs
		v.refresh()
	}
}

func (v *detailView) apply(msg detailMsg) {
	if msg.id != v.id {
		return
	}
	v.loading = false
	if msg.err != nil {
		v.err = msg.err
	} else {
		v.dep, v.certs = &msg.dep, msg.certs
		// Events that arrived while loading are already in msg.events or
		// newer than them: keep the newer ones.
		var last int64
		if n := len(msg.events); n > 0 {
			last = msg.events[n-1].Seq
		}
		live := slices.DeleteFunc(v.events, func(e api.Event) bool { return e.Seq <= last })
		v.events = append(msg.events, live...)
	}
	v.refresh()
}

// applyEvent adds a live event of this deployment. It reports whether the
// view changed.
func (v *detailView) applyEvent(ev api.Event) bool {
	if ev.Type == "probe" {
		return false // not a lifecycle step: the progress modal shows it
	}
	if v.id == "" || ev.DeploymentID != v.id {
		if ev.Deployment == nil || ev.Deployment.ID != v.id || v.id == "" {
			return false
		}
	}
	if ev.Deployment != nil {
		d := *ev.Deployment
		v.dep = &d
	}
	v.events = append(v.events, ev)
	atBottom := v.vp.AtBottom()
	v.refresh()
	if atBottom {
		v.vp.GotoBottom()
	}
	return true
}

// hasLogs says whether l has logs to show: the container's, or the log kept
// from it.
func (v *detailView) hasLogs() bool {
	live, _ := logSource(v.dep, v.c.now())
	return live || v.dep.LogsKeptAt != nil
}

func (v *detailView) inProgress() bool {
	return v.dep != nil && inProgress(v.dep.Status)
}

func (v *detailView) setSize(w, h int) {
	v.width, v.height = w, h
	v.vp.SetWidth(w)
	v.vp.SetHeight(max(h-1, 1))
	v.refresh()
}

func (v *detailView) scroll(k *KeyMap, msg tea.KeyPressMsg) {
	scrollViewport(&v.vp, k, msg)
}

// refresh rebuilds the viewport's content from the deployment.
func (v *detailView) refresh() {
	if v.dep == nil {
		v.vp.SetContent("")
		return
	}
	st := v.c.styles
	d := v.dep
	var lines []string
	add := func(label, value string) {
		lines = append(lines, " "+st.Label.Render(fit(label, 15))+value)
	}
	now := v.c.now()
	status := st.StatusStyle(statusKey(d.Status, d.Runtime)).Render(statusCell(d.Status, d.Runtime, d.WarmUntil, now, v.c.spin, 99))
	head := " " + st.PaneTitleFocused.Render("#"+strconv.Itoa(d.Number)) + "  " + kindText(d) + "  " + status
	if d.RollbackCapable {
		head += "  " + st.Badge.Render("Rollback capable")
	}
	lines = append(lines, head, "")
	add("id", d.ID)
	image := d.Image
	if d.ImageDigest != "" {
		image += st.Dim.Render("  @" + shortDigest(d.ImageDigest))
	}
	add("image", image)
	availability := orDash(d.ImageAvailability)
	if d.ImageAvailabilityVia != "" {
		availability += " (" + d.ImageAvailabilityVia + " copy)"
	}
	add("image source", orDash(d.ImageSource)+st.Dim.Render(" · "+availability))
	add("port", strconv.Itoa(d.Port))
	add("health check", healthText(d.HealthCheck))
	add("deploy timeout", orDash(d.DeployTimeout))
	add("limits", "cpus "+cpusText(d.CPUs)+" · memory "+memoryText(d.Memory))
	add("domains", listText(d.Domains))
	label := "https"
	for _, line := range certLines(st, d.Domains, v.certs, v.width-17) {
		add(label, line)
		label = ""
	}
	if len(d.EnvKeys) == 0 {
		add("env", "-")
	}
	for i, k := range d.EnvKeys {
		label := ""
		if i == 0 {
			label = "env"
		}
		add(label, k+"="+st.Masked.Render(masked))
	}
	add("triggered by", orDash(d.TriggeredBy))
	add("created", stamp(&d.CreatedAt))
	add("activated", stamp(d.ActivatedAt))
	add("ended", stamp(d.EndedAt))
	live, where := logSource(d, v.c.now())
	switch {
	case live && (len(d.Containers) > 1 || d.Replicas > 1):
		head := strconv.Itoa(d.Replicas)
		if d.Runtime != nil {
			head = fmt.Sprintf("%d/%d healthy", d.HealthyReplicas, d.Replicas)
		}
		add("replicas", head)
		for _, r := range d.Containers {
			line := fmt.Sprintf("#%d %s", r.Slot, shortID(r.ContainerID)) + st.Dim.Render(" on 127.0.0.1:"+strconv.Itoa(r.HostPort))
			if r.Runtime != nil {
				line += st.Dim.Render(" · ") + *r.Runtime
				if r.RuntimeReason != "" {
					line += st.Dim.Render(": " + r.RuntimeReason)
				}
			}
			add("", line)
		}
	case live:
		add("container", where+st.Dim.Render(" on 127.0.0.1:"+strconv.Itoa(d.HostPort)))
	default:
		add("logs", st.Dim.Render(where))
	}
	if d.Runtime != nil {
		rt := *d.Runtime
		if d.RuntimeReason != "" {
			rt += ": " + strings.TrimPrefix(d.RuntimeReason, rt+": ")
		}
		add("runtime", st.StatusStyle(statusKey(d.Status, d.Runtime)).Render(rt))
	}
	if s, ok := v.c.statsOf(d.Service, d.ID); ok && d.Status == "ACTIVE" {
		add("usage", usageLine(s, d.Memory))
	}
	if d.Restarts > 0 || d.LastExit != nil {
		restarts := strconv.Itoa(d.Restarts) + " restart(s)"
		if d.LastExit != nil {
			restarts += st.Dim.Render(" · last exit: " + *d.LastExit)
		}
		add("restarts", restarts)
	}
	if d.WatchUntil != nil {
		watch := "until " + stamp(d.WatchUntil)
		if d.WatchTripped != "" {
			watch += st.Error.Render(" · tripped: " + d.WatchTripped)
		}
		add("watch", watch)
	}
	if d.WarmUntil != nil && d.Status == "INACTIVE" && d.WarmUntil.After(now) {
		add("standby", warmText(*d.WarmUntil, now)+st.Dim.Render(" (until "+stamp(d.WarmUntil)+"): a rollback to it adopts its container"))
	}
	if placement := slices.Concat(d.Constraints, d.PlacementPrefs); len(placement) > 0 {
		add("placement", listText(placement))
	}
	for i, t := range d.Tasks { // on Docker Swarm: each task with its node
		label := ""
		if i == 0 {
			label = "tasks"
		}
		add(label, shortID(t.ID)+" on "+t.Node+st.Dim.Render(" "+orDash(t.Addr)+" · ")+t.State)
	}
	if d.FailureReason != "" {
		add("failure", st.Error.Render(d.FailureReason))
	}
	lines = append(lines, "", " "+st.PaneTitle.Render("Lifecycle"))
	if len(v.events) == 0 {
		lines = append(lines, " "+st.Dim.Render("no events"))
	}
	for _, e := range v.events {
		lines = append(lines, eventLine(st, e))
	}
	for i := range lines {
		lines[i] = fit(lines[i], v.width) // a line cut says so (…)
	}
	v.vp.SetContentLines(lines)
}

// relativeTimesWait is how long until the warm standby's countdown shown
// changes (0: none shown).
func (v *detailView) relativeTimesWait(now time.Time) time.Duration {
	if d := v.dep; d != nil && d.WarmUntil != nil && d.WarmUntil.After(now) {
		return countdownChange(d.WarmUntil.Sub(now))
	}
	return 0
}

// certLines says, for each of domains that has a certificate entry, its state:
// "valid until" with its issuer, and the last error, if any, wrapped to width.
func certLines(st *Styles, domains []string, certs []api.Certificate, width int) []string {
	var lines []string
	for _, d := range domains {
		for _, c := range certs {
			if c.Domain != d {
				continue
			}
			line := d + " " + c.Status
			if c.NotAfter != nil {
				line += " until " + c.NotAfter.Local().Format("2006-01-02") + st.Dim.Render(" · "+c.Issuer)
			}
			lines = append(lines, line)
			if c.LastError != "" {
				lines = append(lines, strings.Split(st.Error.Width(max(width, 20)).Render("  "+c.LastError), "\n")...)
			}
		}
	}
	return lines
}

// eventLine is one lifecycle event: time, status, message.
func eventLine(st *Styles, e api.Event) string {
	status := e.Status
	if status == "" && e.Deployment != nil {
		status = e.Deployment.Status
	}
	return " " + st.Dim.Render(e.At.Format("15:04:05")) + "  " +
		st.StatusStyle(status).Render(fit(status, 15)) + "  " + e.Message
}

func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

func (v *detailView) view(focused bool) []string {
	st := v.c.styles
	name := "deployment"
	if v.dep != nil {
		name = v.dep.Service + " #" + strconv.Itoa(v.dep.Number)
	}
	right := "esc back"
	if v.dep != nil && v.hasLogs() {
		right += " · l logs"
	}
	if v.loading {
		right = "loading… · " + right
	}
	lines := []string{joinEnds(st.paneTitle(name, focused), st.Dim.Render(right+" "), v.width)}
	if v.err != nil {
		lines = append(lines, fit(st.Error.Render("  "+v.err.Error()), v.width))
	}
	body := padLines(v.vp.View(), v.width, v.height-len(lines))
	return append(lines, body...)
}
