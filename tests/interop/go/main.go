// Command interop is the Go side of the cross-language tests
// (docs/INTEROP.md):
//
//	interop writer PATH --scenario NAME [--spec FILE] [--producer ID] [--barrier DIR] [--fanout]
//	interop reader PATH --scenario NAME [--spec FILE] [--producers N] [--from I] [--to J]
//	interop vectors DIR
//	interop subscribe PATH [--name NAME] [--lossy] ... (subscribe.go)
//	interop work PATH --group NAME ... (work.go)
//
// Exit status: 0 success, 1 a verification failure, 2 any other error.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: interop writer|reader|subscribe|work|vectors ...")
		os.Exit(2)
	}
	command, args := os.Args[1], os.Args[2:]
	var err error
	switch command {
	case "writer", "reader":
		var a *interopArgs
		if a, err = parseArgs(command, args); err == nil {
			if command == "writer" {
				err = runWriter(a)
			} else {
				err = runReader(a)
			}
		}
	case "subscribe":
		err = runSubscribe(args)
	case "work":
		err = runWork(args)
	case "vectors":
		if len(args) != 1 {
			err = errors.New("usage: interop vectors DIR")
		} else {
			err = checkVectors(args[0])
		}
	default:
		err = fmt.Errorf("unknown command %q", command)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "go %s: %v\n", command, err)
		if errors.Is(err, errMismatch) {
			os.Exit(1)
		}
		os.Exit(2)
	}
}
