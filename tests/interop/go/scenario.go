package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The interop scenarios (tests/interop/scenarios.txt, docs/INTEROP.md): the
// messages a writer sends and a reader expects, computed from the scenario
// and the message index alone so that every language agrees without sharing
// code.
type scenario struct {
	name     string
	kind     string // "stream" or "tagged"
	capacity int
	count    uint64
	seed     uint64
	sizeBase uint64
	sizeMult uint64
	sizeMod  uint64
}

// taggedOverhead is what a tagged message adds around its body: producer
// (1 byte), sequence number (4) and crc (4).
const taggedOverhead = 9

// interopTimeout bounds every blocking call: a dead partner fails the test
// instead of hanging it.
const interopTimeout = 30 * time.Second

func (s *scenario) length(index uint64) int {
	return int(s.sizeBase + (index*s.sizeMult)%s.sizeMod)
}

func (s *scenario) maxMessage() int {
	body := int(s.sizeBase + s.sizeMod - 1)
	if s.kind == "tagged" {
		return body + taggedOverhead
	}
	return body
}

func (s *scenario) streamMessage(index uint64, buf []byte) []byte {
	n := s.length(index)
	start := s.seed + 7*index
	for j := 0; j < n; j++ {
		buf[j] = byte(start + uint64(j))
	}
	return buf[:n]
}

func (s *scenario) taggedMessage(producer int, seq uint64, buf []byte) []byte {
	body := s.length(seq)
	buf[0] = byte(producer)
	binary.LittleEndian.PutUint32(buf[1:], uint32(seq))
	start := s.seed + 7*seq + 31*uint64(producer)
	for j := 0; j < body; j++ {
		buf[5+j] = byte(start + uint64(j))
	}
	binary.LittleEndian.PutUint32(buf[5+body:], crc32.ChecksumIEEE(buf[:5+body]))
	return buf[:body+taggedOverhead]
}

func loadScenario(specPath, name string) (*scenario, error) {
	f, err := os.Open(specPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) != 8 || strings.HasPrefix(fields[0], "#") || fields[0] != name {
			continue
		}
		var numbers [6]uint64
		for k := range numbers {
			if numbers[k], err = strconv.ParseUint(fields[2+k], 10, 64); err != nil {
				return nil, fmt.Errorf("bad spec line for %s: %v", name, err)
			}
		}
		s := &scenario{name: name, kind: fields[1], capacity: int(numbers[0]), count: numbers[1],
			seed: numbers[2], sizeBase: numbers[3], sizeMult: numbers[4], sizeMod: numbers[5]}
		if (s.kind != "stream" && s.kind != "stored" && s.kind != "tagged") || s.sizeMod == 0 {
			return nil, fmt.Errorf("bad spec line for %s", name)
		}
		if s.kind == "stored" {
			s.kind = "stream" // only the driver runs it differently
		}
		return s, nil
	}
	if err := lines.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("no scenario %s in %s", name, specPath)
}

type interopArgs struct {
	path      string
	scenario  *scenario
	producer  int
	producers int
	barrier   string
	from, to  uint64 // a reader's turn: messages from..to-1 of a stream scenario
	rings     int    // a reader of rings PATH.0 .. PATH.rings-1, a goroutine each
	fanout    bool   // a writer to an existing ring (a fan-out ring), opened, not created
}

// parseArgs reads "PATH --scenario NAME [--spec FILE] [--producer ID]
// [--producers N] [--barrier DIR] [--fanout]" and loads the scenario.
func parseArgs(command string, args []string) (*interopArgs, error) {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	name := fs.String("scenario", "", "scenario name")
	spec := fs.String("spec", os.Getenv("MRB_INTEROP_SPEC"), "scenarios.txt")
	a := &interopArgs{}
	fs.IntVar(&a.producer, "producer", 0, "producer id (tagged scenarios)")
	fs.IntVar(&a.producers, "producers", 1, "number of producers (tagged scenarios)")
	fs.StringVar(&a.barrier, "barrier", "", "start barrier directory")
	fs.Uint64Var(&a.from, "from", 0, "first message this reader reads")
	fs.Uint64Var(&a.to, "to", ^uint64(0), "message this reader stops before")
	fs.IntVar(&a.rings, "rings", 0, "read rings PATH.0 .. PATH.N-1 at once, a goroutine each")
	fs.BoolVar(&a.fanout, "fanout", false, "write to the existing (fan-out) ring at PATH")
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		a.path, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if a.path == "" || *name == "" || *spec == "" || fs.NArg() != 0 || a.producers < 1 {
		return nil, fmt.Errorf("usage: %s PATH --scenario NAME --spec FILE", command)
	}
	s, err := loadScenario(*spec, *name)
	if err != nil {
		return nil, err
	}
	a.scenario = s
	a.to = min(a.to, s.count)
	a.from = min(a.from, a.to)
	return a, nil
}

// barrierWait is the producer side of the start barrier: announce readiness,
// wait for "go".
func barrierWait(dir string, producer int) error {
	ready := filepath.Join(dir, fmt.Sprintf("ready.%d", producer))
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		return err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go")); err == nil {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}
