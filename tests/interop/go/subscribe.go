package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"time"

	ringbuffer "github.com/mmap-ringbuffer/mmap_ringbuffer/bindings/go"
)

// The subscriber of the cross-language subscriber tests (issue 14):
//
//	interop subscribe PATH [--name NAME] [--lossy] [--evict-after DUR]
//	    [--from-oldest] [--create SIZE] [--count N] [--stop TEXT] [--stops K]
//	    [--tagged] [--ready FILE] [--timeout DUR]
//
// It joins the ring at PATH as a subscriber (durable unless --lossy; named
// with --name; evictable with --evict-after; --create SIZE first creates
// the fan-out ring if there is none) and reads until it has printed N
// messages (--count) or seen K messages equal to TEXT (--stop, --stops,
// default 1; not printed), then closes and exits 0. With --ready FILE it
// creates FILE once it has joined (a driver starts producers after that:
// a new subscriber joins at the live end).
//
// Each message is one line on stdout, written before the message is
// released:
//
//	INDEX LENGTH CRC32              default: INDEX counts from 0 in this
//	                                process, CRC32 of the payload, %08x
//	PRODUCER SEQ LENGTH CRC32       --tagged: the interop tagged format
//	                                (producer u8, sequence u32, body,
//	                                CRC-32 of the rest): its fields, the
//	                                CRC checked
//
// and, for an evictable subscriber that was evicted with a loss, a line
// "lapped LOSTBYTES" where the loss was reported (ErrLapped).
//
// A durable subscriber that is not evictable reads with Hold: the lines of
// a batch are written, then the batch is released (ReleaseThrough), so a
// named one that is killed and restarted prints every message at least
// once; only messages printed just before the kill (not yet released) can
// be printed again, never a released one. Lossy and evictable ones release
// as they read. A summary goes to stderr:
// "go subscribe: N messages, M stop messages, lost_bytes X, lost_events Y".
// Exit status: 0 done, 1 a tagged message whose CRC is wrong, 2 anything
// else (including no message for --timeout, default 30 s).
type subscribeArgs struct {
	path     string
	opts     ringbuffer.SubscribeOptions
	create   int
	count    uint64
	stop     string
	stops    int
	tagged   bool
	ready    string
	timeout  time.Duration
	hasStop  bool
	hasCount bool
}

func parseSubscribeArgs(args []string) (*subscribeArgs, error) {
	fs := flag.NewFlagSet("subscribe", flag.ContinueOnError)
	a := &subscribeArgs{}
	fs.StringVar(&a.opts.Name, "name", "", "subscriber name (durable, resumable)")
	fs.BoolVar(&a.opts.Lossy, "lossy", false, "a lossy tap")
	fs.DurationVar(&a.opts.EvictAfter, "evict-after", 0, "evictable after this long")
	fs.BoolVar(&a.opts.FromOldest, "from-oldest", false, "a new subscriber starts at the oldest message")
	fs.IntVar(&a.create, "create", 0, "create the fan-out ring of this size if absent")
	count := fs.String("count", "", "stop after printing this many messages")
	stop := fs.String("stop", "", "a message with this payload is a stop message")
	fs.IntVar(&a.stops, "stops", 1, "stop after this many stop messages")
	fs.BoolVar(&a.tagged, "tagged", false, "messages are in the interop tagged format")
	fs.StringVar(&a.ready, "ready", "", "file to create once joined")
	fs.DurationVar(&a.timeout, "timeout", interopTimeout, "give up after this long without a message")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		a.path, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) {
		a.hasStop = a.hasStop || f.Name == "stop"
	})
	a.stop = *stop
	if *count != "" {
		n, err := strconv.ParseUint(*count, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--count %q: %v", *count, err)
		}
		a.count, a.hasCount = n, true
	}
	if a.path == "" || fs.NArg() != 0 || (!a.hasCount && !a.hasStop) || a.stops < 1 ||
		(a.hasStop && a.stop == "") || a.timeout <= 0 {
		return nil, errors.New("usage: subscribe PATH [--name NAME] [--lossy] [--evict-after DUR] " +
			"[--from-oldest] [--create SIZE] (--count N | --stop TEXT [--stops K]) [--tagged] " +
			"[--ready FILE] [--timeout DUR]")
	}
	return a, nil
}

// subscriberRun is one run's state: what it printed, how many stops it saw.
type subscriberRun struct {
	a       *subscribeArgs
	out     []byte // the lines of the current batch
	printed uint64
	stopped int
}

func (r *subscriberRun) done() bool {
	return (r.a.hasCount && r.printed >= r.a.count) || (r.a.hasStop && r.stopped >= r.a.stops)
}

// take handles one message: a stop message is counted, any other printed.
func (r *subscriberRun) take(msg []byte) error {
	if r.a.hasStop && string(msg) == r.a.stop {
		r.stopped++
		return nil
	}
	if r.a.tagged {
		if len(msg) < taggedOverhead {
			return fmt.Errorf("%w: tagged message of %d bytes", errMismatch, len(msg))
		}
		body := len(msg) - 4
		if got, want := binary.LittleEndian.Uint32(msg[body:]), crc32.ChecksumIEEE(msg[:body]); got != want {
			return fmt.Errorf("%w: tagged message %d of producer %d: crc %08x, want %08x",
				errMismatch, binary.LittleEndian.Uint32(msg[1:]), msg[0], got, want)
		}
		r.out = fmt.Appendf(r.out, "%d %d %d %08x\n", msg[0], binary.LittleEndian.Uint32(msg[1:]), len(msg),
			binary.LittleEndian.Uint32(msg[body:]))
	} else {
		r.out = fmt.Appendf(r.out, "%d %d %08x\n", r.printed, len(msg), crc32.ChecksumIEEE(msg))
	}
	r.printed++
	return nil
}

// flush writes the batch's lines (one write) before it is released.
func (r *subscriberRun) flush() error {
	if len(r.out) == 0 {
		return nil
	}
	_, err := os.Stdout.Write(r.out)
	r.out = r.out[:0]
	return err
}

func runSubscribe(args []string) error {
	a, err := parseSubscribeArgs(args)
	if err != nil {
		return err
	}
	if a.create > 0 {
		ring, err := ringbuffer.CreateRingBuffer(a.path, a.create, ringbuffer.CreateOptions{FanOut: true})
		if err != nil {
			return err
		}
		ring.Close()
	}
	sub, err := ringbuffer.Subscribe(a.path, a.opts)
	if err != nil {
		return err
	}
	defer sub.Close()
	if a.ready != "" {
		if err := os.WriteFile(a.ready, nil, 0o600); err != nil {
			return err
		}
	}
	hold := !a.opts.Lossy && a.opts.EvictAfter == 0
	if hold {
		if err := sub.Hold(true); err != nil {
			return err
		}
	}
	r := &subscriberRun{a: a}
	buf := make([]byte, sub.MaxMessageSize())
	lengths := make([]int, 64)
	positions := make([]uint64, len(lengths))
	for !r.done() {
		want := len(lengths)
		if a.hasCount && a.count-r.printed < uint64(want) {
			want = int(a.count - r.printed) // read no further than needed
		}
		ctx, cancel := context.WithTimeout(context.Background(), a.timeout)
		n, err := sub.ReadBatchAtContext(ctx, buf, lengths[:want], positions[:want])
		cancel()
		if errors.Is(err, ringbuffer.ErrLapped) {
			info, err := sub.Info()
			if err != nil {
				return err
			}
			r.out = fmt.Appendf(r.out, "lapped %d\n", info.LostBytes)
			if err := r.flush(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("after %d messages: %w", r.printed, err)
		}
		data := buf
		taken := 0
		for taken < n && !r.done() {
			if err := r.take(data[:lengths[taken]]); err != nil {
				return err
			}
			data = data[lengths[taken]:]
			taken++
		}
		if err := r.flush(); err != nil {
			return err
		}
		if hold {
			// Messages read past the last one taken stay unreleased: a
			// subscriber joining with this name later reads them.
			if err := sub.ReleaseThrough(positions[taken-1]); err != nil {
				return err
			}
		}
	}
	info, err := sub.Info()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "go subscribe: %d messages, %d stop messages, lost_bytes %d, lost_events %d\n",
		r.printed, r.stopped, info.LostBytes, info.LostEvents)
	// Close, not Hold(false): what was read past the last message taken
	// stays unreleased.
	return nil
}
