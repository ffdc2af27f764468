#!/usr/bin/env bash
# Regenerates the README's screenshots from real captures of `clank demo`.
#
# It builds clank, runs `clank demo` in detached tmux sessions (120x32, then
# 80x24) with its own data dir and ephemeral ports, drives the dashboard with
# its keys, captures each screen with `tmux capture-pane -e` and renders it to
# PNG with charmbracelet/freeze (offline, --language ansi).
#
# Needs: go, tmux, python3, a Docker engine. Optional: sqlite3 (to find the
# demo's containers by owner if something goes wrong).
# Usage: docs/screenshots/make.sh        (WORK=dir keeps the intermediate files)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
work=${WORK:-$(mktemp -d /tmp/clank-shots.XXXXXX)}
mkdir -p "$work"
data=$work/data
tsock=clank-shots-$$ # a tmux server of our own
T() { tmux -L "$tsock" "$@"; }

log() { printf '==> %s\n' "$*" >&2; }

# --- tools -----------------------------------------------------------------

log "building clank into $work"
(cd "$repo" && CGO_ENABLED=0 go build -o "$work/clank" .)

freeze=${FREEZE:-$work/gobin/freeze}
if [ ! -x "$freeze" ]; then
	log "installing freeze v0.2.2 into $work/gobin (not go.mod)"
	(cd "$work" && GOBIN="$work/gobin" go install github.com/charmbracelet/freeze@v0.2.2)
fi

cat >"$work/tmux.conf" <<'EOF'
set -g default-terminal "tmux-256color"
set -ga terminal-overrides ",*:Tc"
set -g status off
set -g exit-empty off
EOF

# --- the demo and its clean-up ---------------------------------------------

owner=""
seen="$work/containers-seen"
: >"$seen"

# note_containers records the names of the containers this demo's daemon owns.
note_containers() {
	if [ -z "$owner" ] && command -v sqlite3 >/dev/null && [ -f "$data/clank.db" ]; then
		owner=$(sqlite3 -readonly "$data/clank.db" "select value from meta where key='owner'" 2>/dev/null || true)
	fi
	[ -n "$owner" ] || return 0
	docker ps -a --filter "label=dev.clank.owner=$owner" --format '{{.Names}}' >>"$seen" || true
}

# quit_demo presses q and waits for the demo to stop its containers and exit.
quit_demo() {
	local s=$1
	T has-session -t "$s" 2>/dev/null || return 0
	note_containers
	# Escape closes a modal or a view; alone, or it reads as alt+q.
	keys "$s" Escape
	sleep 0.5
	keys "$s" q
	wait_for "$s" 'EXITED' 60 || log "warning: $s did not exit"
	T kill-session -t "$s" 2>/dev/null || true
}

cleanup() {
	local s
	for s in big small; do quit_demo "$s" || true; done
	T kill-server 2>/dev/null || true
	rm -f "${TMUX_TMPDIR:-/tmp}/tmux-$(id -u)/$tsock"
	# The demo stops its own containers on q; remove any it left, by name.
	local name
	for name in $(sort -u "$seen"); do
		if docker ps -a --format '{{.Names}}' | grep -qx "$name"; then
			log "removing leftover container $name"
			docker rm -f "$name" >/dev/null || true
		fi
	done
}
trap cleanup EXIT

# start_demo NAME COLS ROWS runs `clank demo` in a detached tmux session.
start_demo() {
	T -f "$work/tmux.conf" new-session -d -s "$1" -x "$2" -y "$3" \
		-e COLORTERM=truecolor -e TERM=tmux-256color \
		"CLANK_DATA_DIR='$data' '$work/clank' demo --http-addr 127.0.0.1:0 --ssh-addr '' --registry-addr ''; echo EXITED; sleep 600"
}

# wait_for SESSION REGEX [SECONDS] waits until the screen matches REGEX.
wait_for() {
	local s=$1 re=$2 n=$((${3:-30} * 4)) i
	for ((i = 0; i < n; i++)); do
		if T capture-pane -p -t "$s" 2>/dev/null | grep -Eq -- "$re"; then
			return 0
		fi
		sleep 0.25
	done
	log "timed out waiting for /$re/ on $s; the screen:"
	T capture-pane -p -t "$s" >&2 || true
	return 1
}

# keys SESSION KEY... sends keys one at a time, as a person would.
keys() {
	local s=$1 k
	shift
	for k in "$@"; do
		T send-keys -t "$s" "$k"
		sleep 0.3
	done
}

# shot SESSION NAME captures the screen (with escape codes) and renders it.
shot() {
	local s=$1 name=$2
	sleep 0.5 # let the renderer draw its last frame
	T capture-pane -e -p -t "$s" >"$work/$name.ansi"
	if ! grep -q $'\e\\[' "$work/$name.ansi"; then
		echo "capture $name has no colour escape codes" >&2
		exit 1
	fi
	normalize <"$work/$name.ansi" >"$work/$name.freeze.ansi"
	"$freeze" "$work/$name.freeze.ansi" --language ansi --output "$here/$name.png" \
		--background '#171717' --border.radius 8 --border.width 1 --border.color '#515151' \
		--padding 10,20,10,20 --margin 0 --font.size 7 --line-height 1.2 \
		--font.ligatures=false >/dev/null
	chmod 644 "$here/$name.png"
	log "wrote docs/screenshots/$name.png"
}

# normalize rewrites tmux's SGR sequences into the subset freeze v0.2.2 draws
# right: it ignores 39/49 (default colours) and keeps only the last attribute
# of a run, so every change becomes a reset, then the background, then the
# foreground. Bold and underline are dropped (freeze draws neither).
normalize() {
	python3 -c '
import re, sys
fg = bg = None
def sgr(m):
    global fg, bg
    p = [int(x) if x else 0 for x in re.split("[;:]", m.group(1))]
    i = 0
    while i < len(p):
        v = p[i]
        if v == 0: fg = bg = None
        elif v == 39: fg = None
        elif v == 49: bg = None
        elif 30 <= v <= 37 or 90 <= v <= 97: fg = str(v)
        elif 40 <= v <= 47: bg = "48;5;%d" % (v - 40)
        elif 100 <= v <= 107: bg = str(v)
        elif v in (38, 48) and i + 1 < len(p):
            n = 3 if p[i + 1] == 5 else 5
            val = ";".join(str(x) for x in p[i:i + n])
            i += n - 1
            if v == 38: fg = val
            else: bg = val
        i += 1
    return "\x1b[0m" + state()
def state():
    out = ""
    if bg: out += "\x1b[%sm" % bg
    if fg: out += "\x1b[%sm" % fg
    return out
for line in sys.stdin:
    # tmux carries attributes over line ends; freeze starts each line plain
    sys.stdout.write(state() + re.sub("\x1b\\[([0-9;:]*)m", sgr, line))
'
}

# --- 120x32 ----------------------------------------------------------------

rm -rf "$data"
log "starting clank demo at 120x32 (builds the demo images, deploys web, api, docs)"
start_demo big 120 32
wait_for big 'api deployments' 180
wait_for big '#3 +✗ FAILED'
note_containers

keys big j j # web
wait_for big 'web deployments'
wait_for big 'clank-demo/web:v1'
keys big Tab j j # focus web's deployments, select #1
wait_for big '▸ web deployments'
wait_for big '▌ #1 '
shot big 01-services-deployments

keys big r
wait_for big 'FEATURE_FLAG'
wait_for big 'Cancel +Roll back'
shot big 02-rollback-diff

keys big y
wait_for big '✓ #4 is ACTIVE' 60
note_containers
shot big 03-rollback-active

keys big Enter Tab k k # close, back to the services, select api
wait_for big 'api deployments'
keys big Tab g # api's newest deployment: the FAILED #3
wait_for big '▌ #3 +✗ FAILED'
keys big r
wait_for big 'Refused'
shot big 04-rollback-refused
keys big Enter
quit_demo big

# --- 80x24: the same data, the demo starts its ACTIVE deployments again ------

log "starting clank demo at 80x24"
start_demo small 80 24
wait_for small 'Services' 60
wait_for small 'web +● ACTIVE'
note_containers
shot small 05-narrow-services

keys small j j Enter # web's deployments, full width
wait_for small 'rollback of #1'
shot small 06-narrow-deployments
quit_demo small
