// Command sampleapp runs the sample HTTP service that Clank's tests and demo
// deploy; see internal/sampleapp.
package main

import (
	"fmt"
	"os"

	"github.com/clank-dev/clank/internal/sampleapp"
)

func main() {
	if err := sampleapp.Main(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
