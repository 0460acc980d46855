package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
)

// The Go worker of the cross-language pool test (issue 15,
// tests/workers/pool_interop_test.py):
//
//	interop work PATH --group NAME --scenario NAME --spec FILE --producers N
//	    --ready FILE --done FILE [--batch K] [--pause DUR]
//
// It joins group NAME of the fan-out ring at PATH (an at-least-once group
// without a hold timeout), creates the ready file, and takes messages up to
// K at a time (ReadBatchContext) until the done file exists and a read then
// finds nothing more to take. Each message is processed: checked against
// the scenario (exactly the tagged message of its producer and sequence
// number, so its CRC-32 too), then --pause is slept (simulated work). After
// processing, one line per message goes to stdout:
//
//	PRODUCER SEQ LENGTH CRC32
//
// (CRC32 the message's own CRC field, %08x), and the batch is released by
// the next read call (or Close). A summary goes to stderr. Exit status: 0
// done, 1 a wrong message, 2 anything else.
type workArgs struct {
	path      string
	group     string
	producers int
	batch     int
	pause     time.Duration
	ready     string
	done      string
	spec      string
	name      string
}

func parseWorkArgs(args []string) (*workArgs, error) {
	fs := flag.NewFlagSet("work", flag.ContinueOnError)
	a := &workArgs{}
	fs.StringVar(&a.group, "group", "", "worker group")
	fs.StringVar(&a.name, "scenario", "", "scenario name (tagged)")
	fs.StringVar(&a.spec, "spec", os.Getenv("MRB_INTEROP_SPEC"), "scenarios.txt")
	fs.IntVar(&a.producers, "producers", 1, "number of producers")
	fs.IntVar(&a.batch, "batch", 8, "messages taken at most per read call")
	fs.DurationVar(&a.pause, "pause", 0, "simulated work per message")
	fs.StringVar(&a.ready, "ready", "", "file to create once joined")
	fs.StringVar(&a.done, "done", "", "file whose existence means producers are done")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		a.path, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if a.path == "" || a.group == "" || a.name == "" || a.spec == "" || a.done == "" ||
		fs.NArg() != 0 || a.producers < 1 || a.producers > 255 || a.batch < 1 || a.pause < 0 {
		return nil, errors.New("usage: work PATH --group NAME --scenario NAME --spec FILE " +
			"--producers N --done FILE [--ready FILE] [--batch K] [--pause DUR]")
	}
	return a, nil
}

func runWork(args []string) error {
	a, err := parseWorkArgs(args)
	if err != nil {
		return err
	}
	s, err := loadScenario(a.spec, a.name)
	if err != nil {
		return err
	}
	if s.kind != "tagged" {
		return fmt.Errorf("scenario %s is not tagged", s.name)
	}
	w, err := ringbuffer.JoinWorker(a.path, a.group, nil)
	if err != nil {
		return err
	}
	defer w.Close()
	if a.ready != "" {
		if err := os.WriteFile(a.ready, nil, 0o600); err != nil {
			return err
		}
	}
	buf := make([]byte, a.batch*w.MaxMessageSize())
	want := make([]byte, s.maxMessage())
	lengths := make([]int, a.batch)
	var out []byte
	processed := 0
	idleSince := time.Now()
	for {
		// Seen before the read: if nothing is then left to take, all is taken.
		_, statErr := os.Stat(a.done)
		done := statErr == nil
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		n, err := w.ReadBatchContext(ctx, buf, lengths)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			if done {
				break
			}
			if time.Since(idleSince) > interopTimeout {
				return fmt.Errorf("no message for %v after %d", interopTimeout, processed)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("after %d messages: %w", processed, err)
		}
		idleSince = time.Now()
		data := buf
		for i := 0; i < n; i++ {
			msg := data[:lengths[i]]
			data = data[lengths[i]:]
			if len(msg) < taggedOverhead {
				return fmt.Errorf("%w: message of %d bytes", errMismatch, len(msg))
			}
			producer, seq := int(msg[0]), binary.LittleEndian.Uint32(msg[1:])
			if producer >= a.producers || uint64(seq) >= s.count ||
				!bytes.Equal(msg, s.taggedMessage(producer, uint64(seq), want)) {
				return fmt.Errorf("%w: message of producer %d seq %d (%d bytes) is not the scenario's",
					errMismatch, producer, seq, len(msg))
			}
			if a.pause > 0 {
				time.Sleep(a.pause)
			}
			out = fmt.Appendf(out, "%d %d %d %08x\n", producer, seq, len(msg),
				binary.LittleEndian.Uint32(msg[len(msg)-4:]))
		}
		// Printed after processing, before the batch is released (next read).
		if _, err := os.Stdout.Write(out); err != nil {
			return err
		}
		out = out[:0]
		processed += n
	}
	if err := w.Ack(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "go work: %d messages\n", processed)
	return nil
}
