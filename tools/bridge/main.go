// SPDX-License-Identifier: MIT

// Command mrb-bridge carries messages between a ring and NATS JetStream
// (docs/BRIDGE.md):
//
//	mrb-bridge out --ring PATH --subject S [--stream NAME] [--subscriber NAME] [--server URL]
//	mrb-bridge in  --ring PATH --subject S --stream NAME [--server URL]
//	mrb-bridge bench --server URL
//
// out reads the ring as its consumer (or, with --subscriber, as a named
// durable subscriber of a fan-out ring) in hold mode and frees a message only
// once JetStream acknowledged it; each message carries the id
// "SALT-CREATED-POSITION" (the ring's identity and the record's position)
// in Nats-Msg-Id, so that the stream's duplicate window drops a re-publish
// after a crash. in reads the stream from the sequence after the last one it
// wrote (kept in a state file beside the ring) and writes each message into
// the ring, recording the sequence only after the write.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
)

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  mrb-bridge out   --ring PATH --subject S [--stream NAME] [--subscriber NAME] [--server URL] [options]
  mrb-bridge in    --ring PATH --subject S --stream NAME [--server URL] [options]
  mrb-bridge bench --server URL [--count N] [--sizes 64,4096]
Run a subcommand with -h for its options. See docs/BRIDGE.md.
`)
}

func main() {
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := log.New(os.Stderr, "mrb-bridge "+os.Args[1]+": ", log.LstdFlags|log.Lmicroseconds)
	if os.Args[1] == "out" || os.Args[1] == "in" {
		// After the signal handler is in place: SIGTERM now stops cleanly.
		logger.Printf("running (pid %d)", os.Getpid())
	}
	var err error
	switch os.Args[1] {
	case "out":
		err = mainOut(ctx, os.Args[2:], logger)
	case "in":
		err = mainIn(ctx, os.Args[2:], logger)
	case "bench":
		err = mainBench(ctx, os.Args[2:], os.Stdout)
	case "-h", "--help", "help":
		usage(os.Stdout)
		return
	default:
		usage(os.Stderr)
		os.Exit(2)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		logger.Print(err)
		os.Exit(1)
	}
}

// common are the options both directions share.
type common struct {
	ring    string
	subject string
	stream  string
	server  string
	stats   time.Duration // how often to log rates and lag (0: never)
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.ring, "ring", "", "ring file (required)")
	fs.StringVar(&c.subject, "subject", "", "NATS subject (required)")
	fs.StringVar(&c.stream, "stream", "", "JetStream stream")
	fs.StringVar(&c.server, "server", nats.DefaultURL, "NATS server URL(s), comma-separated")
	fs.DurationVar(&c.stats, "stats", 10*time.Second, "log rates and lag this often (0: never)")
}

func (c *common) check(fs *flag.FlagSet, needStream bool) error {
	if c.ring == "" || c.subject == "" || (needStream && c.stream == "") {
		fs.Usage()
		return fmt.Errorf("missing --ring, --subject or --stream")
	}
	return nil
}

// connect dials the server and keeps reconnecting forever. Publishes made
// while disconnected fail at once rather than being buffered: a buffered
// publish would reach the new server ahead of the unacknowledged ones lost
// with the old connection, out of order (the out direction re-sends those
// itself).
func connect(ctx context.Context, urls, name string, logger *log.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Printf("disconnected: %v", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Printf("reconnected to %s", nc.ConnectedUrl())
		}),
	}
	nc, err := nats.Connect(strings.TrimSpace(urls), opts...)
	if err != nil {
		return nil, err
	}
	return nc, nil
}

// backoff sleeps d or until ctx ends.
func backoff(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
