// Command serve runs the embedded Clank registry alone, for the OCI
// conformance suite or a manual docker push:
//
//	go run ./registry/conformance/serve -addr 127.0.0.1:5000 [-dir DIR]
//
// It prints the address it listens on and serves until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/clank-dev/clank/registry"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5000", "address to listen on")
	dir := flag.String("dir", "", "data directory (default: a temporary one, removed on exit)")
	flag.Parse()
	if err := run(*addr, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

func run(addr, dir string) error {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "clank-registry-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := registry.NewServer(ctx, dir)
	if err != nil {
		return err
	}
	bound, err := srv.Start(addr)
	if err != nil {
		return err
	}
	cred := srv.Credential()
	fmt.Println("listening on", bound)
	fmt.Printf("pushes and deletes need: docker login -u %s --password-stdin %s (password: %s)\n", cred.Username, bound, cred.Password)
	<-ctx.Done()
	if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
