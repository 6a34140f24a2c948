package mosquitto

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clientTimeout bounds each mosquitto_pub run, and Sub's wait for its
// subscription, whatever the caller's ctx.
const clientTimeout = 10 * time.Second

// Pub runs "mosquitto_pub -h 127.0.0.1 -p PORT args..." against the plain
// listener and waits for it to exit, within ctx and at most 10s. For
// example Pub(ctx, "-q", "1", "-t", "a/b", "-m", "hello"), or with
// "-V", "5", "-D", "publish", "user-property", "k", "v" for MQTT 5.0.
// mosquitto_pub returns once its QoS 1 or 2 exchange is complete, so the
// broker has the message when Pub returns nil.
func (b *Broker) Pub(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bins.pub, append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(b.port)}, args...)...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return fmt.Errorf("mosquitto_pub %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Sub is a running mosquitto_sub whose standard output is delivered line
// by line.
type Sub struct {
	id     string
	lines  chan string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stderr string        // path of its standard error
	quit   chan struct{} // closed by Close: discard further output
	done   chan struct{} // closed once the output is read and the process reaped
	err    error         // cmd.Wait's result, set before done is closed
	once   sync.Once
}

// Sub starts "mosquitto_sub -h 127.0.0.1 -p PORT -i ID args..." and
// returns once the broker has acknowledged its subscriptions (its log
// shows the SUBACK), so a message published after Sub returns reaches it;
// or once it has exited successfully by itself. ID is the one in args ("-i id" or "--id id"), or a generated one. ctx
// bounds the subscriber's whole life: when it ends, mosquitto_sub is
// killed. The test's cleanup closes it at the latest.
//
// Typical args: "-q", "1", "-t", "a/#", "-F", "%q %r %t %p" (QoS, retain
// flag, topic, payload); "-V", "5", "-F", "%j" for MQTT 5.0 properties as
// JSON; "-c" for a persistent session; "-C", "n" to exit after n messages.
func (b *Broker) Sub(ctx context.Context, args ...string) (*Sub, error) {
	if slices.Contains(args, "-I") || slices.Contains(args, "--id-prefix") {
		return nil, errors.New("mosquitto: Sub needs a known client id: use -i, not -I")
	}
	b.mu.Lock()
	b.subN++
	n := b.subN
	b.mu.Unlock()
	id := ""
	for i, a := range args {
		if (a == "-i" || a == "--id") && i+1 < len(args) {
			id = args[i+1]
		}
	}
	full := append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(b.port)}, args...)
	if id == "" {
		id = "mosqsub-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(n)
		full = append(full, "-i", id)
	}
	ackLine := "Sending SUBACK to " + id + "\n"
	acked := strings.Count(b.Log(), ackLine)

	s := &Sub{
		id:     id,
		lines:  make(chan string, 4096),
		stderr: filepath.Join(b.dir, "mosquitto_sub-"+strconv.Itoa(n)+".stderr"),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	errf, err := os.Create(s.stderr)
	if err != nil {
		return nil, err
	}
	defer errf.Close() // the child has its own copy
	var lifeCtx context.Context
	lifeCtx, s.cancel = context.WithCancel(ctx)
	s.cmd = exec.CommandContext(lifeCtx, b.bins.sub, full...)
	s.cmd.Stderr = errf
	s.cmd.WaitDelay = time.Second
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		s.cancel()
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		s.cancel()
		return nil, fmt.Errorf("mosquitto_sub: %w", err)
	}
	go s.readLoop(stdout)
	if b.tb != nil {
		b.tb.Cleanup(func() { s.Close() })
	}

	// Wait for the SUBACK in the broker's log, polling with backoff.
	deadline := time.NewTimer(clientTimeout)
	defer deadline.Stop()
	wait := time.Millisecond
	for {
		if strings.Count(b.Log(), ackLine) > acked {
			return s, nil
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			wait = min(2*wait, 20*time.Millisecond)
			continue
		case <-s.done:
			t.Stop()
			if s.err == nil {
				// It did its job and exited (-E, or -C n satisfied by a
				// persistent session's queue even before its SUBACK).
				return s, nil
			}
			return nil, fmt.Errorf("mosquitto_sub %s exited before subscribing: %v: %s", strings.Join(args, " "), s.err, s.Stderr())
		case <-ctx.Done():
			t.Stop()
			s.Close()
			return nil, fmt.Errorf("mosquitto_sub %s: no SUBACK for %s: %w", strings.Join(args, " "), id, ctx.Err())
		case <-deadline.C:
			t.Stop()
			s.Close()
			return nil, fmt.Errorf("mosquitto_sub %s: no SUBACK for %s within %v", strings.Join(args, " "), id, clientTimeout)
		}
	}
}

// readLoop delivers the output line by line until EOF, then reaps the
// process.
func (s *Sub) readLoop(stdout io.Reader) {
	defer close(s.done)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		select {
		case s.lines <- sc.Text():
		case <-s.quit:
		}
	}
	_, _ = io.Copy(io.Discard, stdout) // after a line too long: to EOF all the same
	close(s.lines)
	s.err = s.cmd.Wait()
}

// ID returns the subscriber's client identifier.
func (s *Sub) ID() string { return s.id }

// Lines returns the channel of output lines. It holds up to 4096 unread
// lines; beyond that mosquitto_sub is held up until they are read. It is
// closed when mosquitto_sub exits.
func (s *Sub) Lines() <-chan string { return s.lines }

// Next returns the next output line, or an error if ctx ends or
// mosquitto_sub exits first.
func (s *Sub) Next(ctx context.Context) (string, error) {
	select {
	case l, ok := <-s.lines:
		if !ok {
			<-s.done
			return "", fmt.Errorf("mosquitto_sub exited: %v: %s", s.err, s.Stderr())
		}
		return l, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Wait waits until mosquitto_sub exits by itself (after -C n messages, -W
// seconds, or -E) and returns its exit error. Its output must be read, or
// fit in the Lines buffer.
func (s *Sub) Wait(ctx context.Context) error {
	select {
	case <-s.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.err != nil {
		return fmt.Errorf("mosquitto_sub: %w: %s", s.err, s.Stderr())
	}
	return nil
}

// Close kills mosquitto_sub if it is still running and waits for it to be
// reaped. Output not yet read is discarded. Close is idempotent.
func (s *Sub) Close() {
	s.once.Do(func() {
		close(s.quit)
		s.cancel()
	})
	<-s.done
}

// Stderr returns what mosquitto_sub has written to its standard error.
func (s *Sub) Stderr() string {
	data, _ := os.ReadFile(s.stderr)
	return strings.TrimSpace(string(data))
}
