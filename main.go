// Command clank is a self-hosted deployment platform in one binary: see the
// README, and ui/cli for the commands.
package main

import (
	"context"
	"os"

	"github.com/clank-dev/clank/ui/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:]))
}
