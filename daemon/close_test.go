package daemon

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/internal/testdocker"
)

// TestCloseEndsOpenStreams: a dashboard's event stream (or a followed log) does not
// hold the daemon's shutdown to the API server's 5 s grace.
func TestCloseEndsOpenStreams(t *testing.T) {
	testdocker.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := Start(ctx, Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	events, err := api.NewClient(d.Socket()).Subscribe(ctx)
	if err != nil {
		d.Close(context.Background())
		t.Fatal(err)
	}
	start := time.Now()
	d.Close(context.Background())
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close took %s with an event stream open", took)
	}
	select {
	case _, ok := <-events:
		for ok {
			_, ok = <-events
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the client's event stream is still open after Close")
	}
}
