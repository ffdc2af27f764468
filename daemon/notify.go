package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/engine"
)

// Notifications (docs/architecture.md, "After the cutover"): with `clank serve --notify
// URL` the daemon POSTs a JSON api.Notification to each URL for every
// deployment that ends (ACTIVE or FAILED), every watch trip, every automatic
// rollback (and every one the rules refused), and every crash of an ACTIVE
// container. The engine never waits for a receiver: each URL has a bounded
// queue and a sender of its own, which tries each notification a few times
// with a timeout; when a receiver is too slow or dead and its queue is
// full, new notifications for it are dropped with a log line rather than
// kept in memory. Bodies carry no env values (deployments as in `-o json`,
// without --show-env).
const (
	// NotifyQueue is how many notifications wait per receiver.
	NotifyQueue = 256
	// NotifyTimeout bounds one POST, the receiver's answer included.
	NotifyTimeout = 5 * time.Second
	// NotifyAttempts is how often a notification is tried; the waits between
	// tries start at notifyRetryWait and double.
	NotifyAttempts  = 3
	notifyRetryWait = time.Second
	// notifyLogEvery bounds the "dropped" log lines of one receiver.
	notifyLogEvery = 10 * time.Second
)

// Notification event names.
const (
	NotifyDeploymentActive = "deployment.active"
	NotifyDeploymentFailed = "deployment.failed"
	NotifyWatchTripped     = "watch.tripped"
	NotifyAutoRollback     = "rollback.automatic"
	NotifyRollbackRefused  = "rollback.refused"
	NotifyCrash            = "container.crashed"
)

// ParseNotifyURLs reads the receivers of --notify flags and CLANK_NOTIFY
// (comma- or space-separated): absolute http or https URLs.
func ParseNotifyURLs(values ...string) ([]string, error) {
	var out []string
	for _, v := range values {
		for _, u := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
			p, err := url.Parse(u)
			if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				return nil, fmt.Errorf("invalid --notify URL %q: want http://HOST/PATH or https://HOST/PATH", u)
			}
			out = append(out, u)
		}
	}
	return out, nil
}

// notifier delivers notifications to its receivers.
type notifier struct {
	host      string
	log       *slog.Logger
	client    *http.Client
	timeout   time.Duration // NotifyTimeout
	retryWait time.Duration // notifyRetryWait
	receivers []*receiver
}

// receiver is one URL with its queue.
type receiver struct {
	url     string
	queue   chan api.Notification
	dropped atomic.Int64
	lastLog atomic.Int64 // unix nanos of the last "dropped" line
}

func newNotifier(urls []string, log *slog.Logger) *notifier {
	host, _ := os.Hostname()
	n := &notifier{host: host, log: log.With("part", "notify"), timeout: NotifyTimeout, retryWait: notifyRetryWait,
		client: &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 2}}}
	for _, u := range urls {
		n.receivers = append(n.receivers, &receiver{url: u, queue: make(chan api.Notification, NotifyQueue)})
	}
	return n
}

// run sends each receiver's notifications and turns events into them until
// ctx ends; subscribe gives the events (again, when a stream is cut off).
func (n *notifier) run(ctx context.Context, subscribe func(context.Context) <-chan api.Event) {
	var wg sync.WaitGroup
	for _, r := range n.receivers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.send(ctx, r)
		}()
	}
	defer wg.Wait()
	for ctx.Err() == nil {
		for ev := range subscribe(ctx) {
			if note, ok := n.notification(ev); ok {
				n.enqueue(note)
			}
		}
	}
}

// notification is what a receiver hears of ev, if anything.
func (n *notifier) notification(ev api.Event) (api.Notification, bool) {
	note := api.Notification{Service: ev.Service, Message: ev.Message, At: ev.At, Host: n.host}
	if ev.Deployment != nil {
		d := *ev.Deployment
		d.Env = nil // never env values, whatever the event carried
		note.Deployment = &d
	}
	switch {
	case ev.Type == engine.EventDeployment && ev.Deployment != nil && ev.Status == "ACTIVE" && ev.Deployment.Status == "ACTIVE":
		note.Event = NotifyDeploymentActive
	case ev.Type == engine.EventDeployment && ev.Deployment != nil && ev.Status == "FAILED":
		note.Event = NotifyDeploymentFailed
	case ev.Type == engine.EventWatch:
		note.Event = NotifyWatchTripped
	case ev.Type == engine.EventAutoRollback:
		note.Event = NotifyAutoRollback
	case ev.Type == engine.EventAutoRollbackRefused:
		note.Event = NotifyRollbackRefused
	case ev.Type == engine.EventRuntime && ev.Deployment != nil && ev.Deployment.Runtime != nil && *ev.Deployment.Runtime == engine.RuntimeCrashed:
		note.Event = NotifyCrash
	default:
		return note, false
	}
	return note, true
}

// enqueue hands note to every receiver without waiting: a full queue drops
// it, with a log line now and then.
func (n *notifier) enqueue(note api.Notification) {
	for _, r := range n.receivers {
		select {
		case r.queue <- note:
		default:
			count := r.dropped.Add(1)
			now := time.Now().UnixNano()
			if last := r.lastLog.Load(); now-last >= int64(notifyLogEvery) && r.lastLog.CompareAndSwap(last, now) {
				n.log.Warn("notification receiver too slow or down: notifications dropped", "url", r.url, "dropped", count, "event", note.Event)
			}
		}
	}
}

// send delivers r's queue until ctx ends.
func (n *notifier) send(ctx context.Context, r *receiver) {
	for {
		select {
		case <-ctx.Done():
			if left := len(r.queue); left > 0 {
				n.log.Warn("daemon stopping: notifications not sent", "url", r.url, "count", left)
			}
			return
		case note := <-r.queue:
			if err := n.deliver(ctx, r.url, note); err != nil && ctx.Err() == nil {
				n.log.Warn("notification dropped", "url", r.url, "event", note.Event, "service", note.Service, "err", err)
			}
		}
	}
}

// deliver POSTs note to url, trying again (up to NotifyAttempts) when the
// receiver does not answer 2xx.
func (n *notifier) deliver(ctx context.Context, url string, note api.Notification) error {
	body, err := json.Marshal(note)
	if err != nil {
		return err
	}
	wait := n.retryWait
	for attempt := 1; ; attempt++ {
		err = n.post(ctx, url, note.Event, body)
		if err == nil || attempt == NotifyAttempts {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

func (n *notifier) post(ctx context.Context, url, event string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "clank/"+Version)
	req.Header.Set("X-Clank-Event", event)
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}
