package ui

import (
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"github.com/clank-dev/clank/api"
)

// readOnlyReason is what a viewer is told when trying to act.
const readOnlyReason = "read-only: viewer role"

// kindDelete is the modal's action that deletes a service: it has no plan,
// and always asks for the service's name.
const kindDelete = "delete"

// modalStep is where the confirmation modal is in its life.
type modalStep int

const (
	stepPlanning  modalStep = iota // asking the Backend what would change
	stepConfirm                    // showing the diff; Cancel focused
	stepRefused                    // saying why nothing happens
	stepStarting                   // confirmed: Act is on its way
	stepFollowing                  // the new deployment moves through its lifecycle
	stepDone                       // it reached ACTIVE, FAILED or CANCELLED
)

// planMsg and actMsg answer the modal's Backend calls; seq ties them to the
// modal that asked, so a closed modal's answers are dropped.
type (
	planMsg struct {
		seq  int
		plan api.Plan
		err  error
	}
	actMsg struct {
		seq int
		dep api.Deployment
		err error
	}
	deletedMsg struct {
		seq int
		res api.ServiceDeletion
		err error
	}
)

// actionModal confirms a rollback, redeploy or deploy, then follows it.
type actionModal struct {
	c    *common
	seq  int
	req  api.ActionRequest
	what string // "Roll back web to #3"

	step      modalStep
	plan      api.Plan
	reason    string
	onConfirm bool // which button has focus; Cancel (false) by default
	// typed is what the user typed of the service's name: a plan that
	// crosses a schema change confirms only once it is the whole name.
	typed string

	deleted *api.ServiceDeletion // what a delete did
	// svc is the service a deploy deploys (its current config): what a
	// first deployment creates is said from it.
	svc *api.Service

	dep    api.Deployment // the deployment the action created
	events []api.Event    // its lifecycle, as it happens
	probe  string         // its health check's last result, while not recorded
	early  []api.Event    // the service's events that came before Act answered
}

// newModal opens the modal for an action. A viewer gets the refusal at once
// and the Backend is never asked.
func newModal(c *common, seq int, req api.ActionRequest, what string) (*actionModal, tea.Cmd) {
	m := &actionModal{c: c, seq: seq, req: req, what: what}
	if !c.admin() {
		m.step, m.reason = stepRefused, readOnlyReason
		return m, nil
	}
	if req.Kind == kindDelete {
		m.step = stepConfirm // nothing to plan: what goes is said in the box
		return m, nil
	}
	m.step = stepPlanning
	dry := req
	dry.DryRun = true
	dry.TriggeredBy = c.opts.Actor
	// A schema change is shown and gated here (the name must be typed), not
	// refused: ask for the plan as if it were allowed.
	dry.AllowSchemaChange = true
	ctx, b := c.ctx, c.backend
	return m, func() tea.Msg {
		plan, err := b.Plan(ctx, dry)
		return planMsg{seq: seq, plan: plan, err: err}
	}
}

// busy reports whether the modal shows a spinner.
func (m *actionModal) busy() bool {
	return m.step == stepPlanning || m.step == stepStarting || m.step == stepFollowing
}

func (m *actionModal) applyPlan(msg planMsg) {
	if msg.seq != m.seq || m.step != stepPlanning {
		return
	}
	switch {
	case msg.err != nil:
		m.step, m.reason = stepRefused, msg.err.Error()
	case msg.plan.Refusal != "":
		m.plan = msg.plan
		m.step, m.reason = stepRefused, msg.plan.Refusal
	default:
		m.plan = msg.plan
		m.step = stepConfirm
	}
	// "Roll back web to the previous deployment": now it has a number.
	if t := msg.plan.Target; t != nil && m.req.Kind == "rollback" && m.req.Deployment == "" {
		m.what = "Roll back " + m.req.Service + " to #" + strconv.Itoa(t.Number)
	}
}

// confirm asks the Backend to act. The request names the planned target, so
// what runs is what the diff showed even if the history moved meanwhile.
func (m *actionModal) confirm() tea.Cmd {
	if m.step != stepConfirm || !m.c.admin() || !m.nameTyped() {
		return nil
	}
	m.step = stepStarting
	if m.req.Kind == kindDelete {
		ctx, b, seq, name := m.c.ctx, m.c.backend, m.seq, m.req.Service
		return func() tea.Msg {
			res, err := b.DeleteService(ctx, name, false)
			return deletedMsg{seq: seq, res: res, err: err}
		}
	}
	req := m.req
	req.DryRun = false
	req.TriggeredBy = m.c.opts.Actor
	req.AllowSchemaChange = m.gated()
	if m.plan.Target != nil && req.Kind != "deploy" {
		req.Deployment = m.plan.Target.ID
	}
	ctx, b, seq := m.c.ctx, m.c.backend, m.seq
	return func() tea.Msg {
		dep, err := b.Act(ctx, req)
		return actMsg{seq: seq, dep: dep, err: err}
	}
}

func (m *actionModal) applyAct(msg actMsg) {
	if msg.seq != m.seq || m.step != stepStarting {
		return
	}
	if msg.err != nil {
		m.step, m.reason = stepRefused, msg.err.Error()
		return
	}
	m.dep = msg.dep
	m.step = stepFollowing
	early := m.early
	m.early = nil
	for _, ev := range early {
		m.observe(ev)
	}
	m.settle()
}

// observe follows the new deployment through the event stream.
func (m *actionModal) observe(ev api.Event) {
	switch m.step {
	case stepStarting:
		if ev.Service == m.req.Service {
			m.early = append(m.early, ev)
		}
	case stepFollowing:
		id := ev.DeploymentID
		if id == "" && ev.Deployment != nil {
			id = ev.Deployment.ID
		}
		if id != m.dep.ID {
			return
		}
		if ev.Deployment != nil {
			m.dep = *ev.Deployment
		} else if ev.Status != "" {
			m.dep.Status = ev.Status
		}
		if ev.Type == "probe" {
			m.probe = ev.Message // the attempt goes on: one line, in place
			return
		}
		m.probe = ""
		m.events = append(m.events, ev)
		m.settle()
	}
}

func (m *actionModal) settle() {
	switch m.dep.Status {
	case "ACTIVE", "FAILED", "CANCELLED":
		m.step = stepDone
	}
}

// applyDeleted takes the answer of a delete.
func (m *actionModal) applyDeleted(msg deletedMsg) {
	if msg.seq != m.seq || m.step != stepStarting {
		return
	}
	if msg.err != nil {
		m.step, m.reason = stepRefused, msg.err.Error()
		return
	}
	m.deleted, m.step = &msg.res, stepDone
}

// gated reports whether the service's name must be typed before the action
// can be confirmed: a delete, or a plan that crosses a schema change.
func (m *actionModal) gated() bool { return m.plan.SchemaChange != nil || m.req.Kind == kindDelete }

// nameTyped reports whether the gate, if any, is open.
func (m *actionModal) nameTyped() bool { return !m.gated() || m.typed == m.req.Service }

// typeName reads a key of a gated confirmation as part of the service's name.
func (m *actionModal) typeName(msg tea.KeyPressMsg) {
	switch {
	case msg.String() == "backspace":
		if r := []rune(m.typed); len(r) > 0 {
			m.typed = string(r[:len(r)-1])
		}
	case len(msg.Text) > 0 && len(m.typed) < 64:
		m.typed += msg.Text
	}
}

// handleKey reacts to a key; closed says the modal is done with. When the
// confirmation is gated, letters type the service's name (so n and y are
// letters too), y confirms once the name is whole, and only esc cancels.
func (m *actionModal) handleKey(msg tea.KeyPressMsg) (closed bool, cmd tea.Cmd) {
	k := m.c.keys
	gated := m.gated()
	switch m.step {
	case stepConfirm:
		switch {
		case key.Matches(msg, k.Confirm) && m.nameTyped():
			return false, m.confirm()
		case gated && msg.String() == "esc", !gated && key.Matches(msg, k.Cancel):
			return true, nil
		case key.Matches(msg, k.NextButton):
			m.onConfirm = !m.onConfirm
		case key.Matches(msg, k.Press):
			if m.onConfirm {
				return false, m.confirm()
			}
			return true, nil
		case gated:
			m.typeName(msg)
		}
	default:
		// Elsewhere there is nothing to choose: the usual keys close (a
		// started deployment goes on, and the table keeps showing it).
		if key.Matches(msg, k.Cancel, k.Press) {
			return true, nil
		}
	}
	return false, nil
}

// keys are the modal's keys where it is: the choice while confirming, else
// closing it.
func (m *actionModal) keys() []key.Binding {
	k := m.c.keys
	if m.step == stepConfirm {
		return k.modalHelp().ShortHelp()
	}
	close := key.NewBinding(key.WithKeys("enter", "esc"), key.WithHelp("enter/esc", "close"))
	if m.step == stepFollowing || m.step == stepStarting || m.step == stepPlanning {
		close.SetHelp("esc", "hide (it goes on)")
	}
	return []key.Binding{close}
}

// verb is the confirm button's label.
func (m *actionModal) verb() string {
	switch m.req.Kind {
	case "rollback":
		return "Roll back"
	case "redeploy":
		return "Redeploy"
	case kindDelete:
		return "Delete"
	}
	return "Deploy"
}

// view draws the modal's box, at most maxW cells wide and maxH lines high.
func (m *actionModal) view(maxW, maxH int) string {
	st := m.c.styles
	// 76 columns on a small terminal, up to 120 on a wide one: image
	// references are long.
	w := min(max(76, maxW*3/4), 120, maxW-2)
	inner := max(w-4, 20) // border and padding
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	wrap := func(s string, style lipgloss.Style) {
		add(strings.Split(style.Width(inner).Render(s), "\n")...)
	}

	add(st.ModalTitle.Render(fit(m.what, inner)))
	if t := m.plan.Target; t != nil {
		add(st.Dim.Render(fit(targetLine(m.c, t), inner)))
	}
	add("")
	switch m.step {
	case stepPlanning:
		add(m.c.spin + " checking what would change…")
	case stepRefused:
		if m.reason == readOnlyReason {
			wrap("✗ "+m.reason+": ask an admin", st.Error)
		} else {
			wrap("✗ Refused: "+m.reason, st.Error)
		}
		add(st.Dim.Render("Nothing was created."), "")
		add(centre(st.ButtonFocused.Render("OK"), inner))
	case stepConfirm:
		gate := m.gateLines(inner)
		if m.req.Kind != kindDelete {
			add(m.diffLines(inner, maxH-10-len(gate))...)
		}
		add(gate...)
		add("")
		cancel, ok := st.ButtonFocused, st.Button
		if m.onConfirm {
			cancel, ok = st.Button, st.ButtonFocused
		}
		add(centre(cancel.Render("Cancel")+"   "+ok.Render(m.verb()), inner))
		if m.gated() {
			add(st.Dim.Render(fit("type "+m.req.Service+", then y "+strings.ToLower(m.verb())+" · esc cancel · tab choose · enter press", inner)))
		} else {
			add(st.Dim.Render(fit("y "+strings.ToLower(m.verb())+" · n/esc cancel · tab choose · enter press", inner)))
		}
	case stepStarting:
		add(m.c.spin + " starting…")
	case stepDone:
		if m.deleted != nil {
			add(st.Added.Render(fit("✓ "+m.req.Service+" deleted: "+strconv.Itoa(m.deleted.Containers)+" container(s) removed, routes and domains freed", inner)))
			add(st.Dim.Render(fit(strconv.Itoa(m.deleted.Deployments)+" deployment(s) stay as history", inner)), "")
			add(centre(st.ButtonFocused.Render("Close"), inner))
			break
		}
		fallthrough
	case stepFollowing:
		add(st.Dim.Render(fit("#"+strconv.Itoa(m.dep.Number)+" "+kindText(&m.dep)+" · "+m.dep.Image, inner)))
		room := max(maxH-12, 1)
		evs := m.events
		if len(evs) > room {
			evs = evs[len(evs)-room:]
		}
		for _, e := range evs {
			add(fit(strings.TrimPrefix(eventLine(st, e), " "), inner))
		}
		add("")
		add(m.outcome(inner)...)
	}
	return st.Modal.Width(w).Render(strings.Join(lines, "\n"))
}

// gateLines warn, in red, of a schema change and ask for the service's name.
func (m *actionModal) gateLines(inner int) []string {
	if !m.gated() {
		return nil
	}
	st := m.c.styles
	warning := "⚠ This stops " + m.req.Service + "'s containers and takes down its routes and domains. " +
		"Its deployment history and images stay (clank service delete --purge removes them)."
	if sc := m.plan.SchemaChange; sc != nil {
		warning = "⚠ The schema changes: " + strconv.Quote(sc.From) + " (ACTIVE) → " + strconv.Quote(sc.To) +
			". The code may not fit the data."
	}
	out := []string{""}
	out = append(out, strings.Split(st.Error.Width(inner).Render(warning), "\n")...)
	field := m.typed + "▏"
	if m.nameTyped() {
		field = st.Added.Render(m.typed + " ✓")
	}
	return append(out, fit("Type "+st.Label.Render(m.req.Service)+" to confirm: "+field, inner))
}

// outcome is the modal's last word while following and once done.
func (m *actionModal) outcome(inner int) []string {
	st := m.c.styles
	d := &m.dep
	n := "#" + strconv.Itoa(d.Number)
	switch d.Status {
	case "ACTIVE":
		return []string{st.StatusStyle("ACTIVE").Render("✓ " + n + " is ACTIVE"), "", centre(st.ButtonFocused.Render("Close"), inner)}
	case "FAILED", "CANCELLED":
		text := "✗ " + n + " " + d.Status
		if d.FailureReason != "" {
			text += ": " + d.FailureReason
		}
		out := strings.Split(st.Error.Width(inner).Render(text), "\n")
		return append(out, "", centre(st.ButtonFocused.Render("Close"), inner))
	}
	out := []string{st.StatusStyle(d.Status).Render(m.c.spin + " " + d.Status)}
	if m.probe != "" && d.Status == "HEALTH_CHECKING" {
		out[0] += st.Dim.Render(fit("  "+m.probe, inner-cellWidth(out[0])))
	}
	return append(out, st.Dim.Render(fit("esc hides this; the deployment goes on", inner)))
}

// targetLine sums up the deployment an action goes back to.
func targetLine(c *common, t *api.Deployment) string {
	s := "#" + strconv.Itoa(t.Number) + " · " + t.Image
	if t.TriggeredBy != "" {
		s += " · by " + t.TriggeredBy
	}
	return s + " · " + age(c.now(), t.CreatedAt) + " ago"
}

// diffLines shows what the action changes against the current ACTIVE
// deployment. Env values never appear: only which keys are added, removed or
// changed.
func (m *actionModal) diffLines(inner, room int) []string {
	st := m.c.styles
	var out []string
	against := "Changes"
	if c := m.plan.Current; c != nil {
		against = "Changes against ACTIVE #" + strconv.Itoa(c.Number)
	} else if m.plan.Kind != "" {
		against = "Changes (no ACTIVE deployment)"
	}
	if m.plan.Current == nil && m.svc != nil && m.req.Kind == "deploy" {
		return m.createdLines(inner, room)
	}
	out = append(out, st.PaneTitle.Render(against+":"))
	if len(m.plan.Changes) == 0 {
		return append(out, st.Dim.Render("  none: same image and configuration"))
	}
	room = max(room, 3)
	for i, ch := range m.plan.Changes {
		if i == room-1 && len(m.plan.Changes) > room {
			out = append(out, st.Dim.Render("  … and "+strconv.Itoa(len(m.plan.Changes)-i)+" more"))
			break
		}
		for _, line := range changeLines(st, ch, inner) {
			out = append(out, fit(line, inner))
		}
	}
	return out
}

// createdLines say what the first deployment of a service creates: a
// container of its image with its configuration (env values masked), and
// the routes of its domains.
func (m *actionModal) createdLines(inner, room int) []string {
	st := m.c.styles
	svc := m.svc
	label := func(s string) string { return "  " + st.Label.Render(fit(s, 8)) + " " }
	add := func(s string) string { return st.Added.Render("+ " + s) }
	out := []string{st.PaneTitle.Render("Creates (" + svc.Name + " has never been deployed):")}
	out = append(out, label("image")+add(svc.Image))
	envs := make([]string, 0, len(svc.EnvKeys))
	for _, k := range svc.EnvKeys {
		envs = append(envs, k+" = "+masked)
	}
	if len(envs) == 0 {
		envs = append(envs, "none")
	}
	for i, e := range envs {
		l := label("")
		if i == 0 {
			l = label("env")
		}
		if len(out) >= room-5 && i < len(envs)-1 {
			out = append(out, l+st.Dim.Render("… and "+strconv.Itoa(len(envs)-i)+" more"))
			break
		}
		out = append(out, l+add(e))
	}
	out = append(out,
		label("port")+add(strconv.Itoa(svc.Port)),
		label("health")+add(healthText(svc.HealthCheck)),
		label("limits")+add("cpus "+cpusText(svc.CPUs)+" · memory "+memoryText(svc.Memory)),
		label("domains")+add(listText(svc.Domains)+" (routed once it passes its health check)"))
	for i := range out {
		out[i] = fit(out[i], inner)
	}
	return out
}

// changeLines draws one change: on one line when it fits, else the new value
// on a line of its own, so that a long image reference is not cut.
func changeLines(st *Styles, ch api.Change, inner int) []string {
	label := "  " + st.Label.Render(fit(fieldLabel(ch.Field), 8)) + " "
	if ch.Field == "env" {
		switch ch.Op {
		case "added":
			return []string{label + st.Added.Render("+ "+ch.Key+" = "+masked)}
		case "removed":
			return []string{label + st.Removed.Render("- "+ch.Key)}
		default:
			return []string{label + st.Changed.Render("~ "+ch.Key+" "+masked+" → "+masked)}
		}
	}
	from, to := ch.From, ch.To
	one := label + st.Removed.Render(orDash(from)) + " → " + st.Added.Render(orDash(to))
	if lipgloss.Width(one) <= inner {
		return []string{one}
	}
	indent := strings.Repeat(" ", lipgloss.Width(label))
	return []string{label + st.Removed.Render(orDash(from)), indent + "→ " + st.Added.Render(orDash(to))}
}

func fieldLabel(f string) string {
	if f == "health_check" {
		return "health"
	}
	return f
}

// centre centres a line in width cells.
func centre(s string, width int) string {
	pad := (width - lipgloss.Width(s)) / 2
	return spaces(pad) + s
}
