package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// DefaultInterval is the shortest time between two redraws: often enough to
// look alive, rarely enough to cost nothing next to the work it reports.
const DefaultInterval = 200 * time.Millisecond

// width is the number of cells of the bar itself.
const width = 30

// Options configure New.
type Options struct {
	// Force draws even when the output is not a terminal (tests).
	Force bool
	// Interval between redraws; DefaultInterval when zero.
	Interval time.Duration
	// Clock; time.Now when nil.
	Clock func() time.Time
	// Bytes shows the counts as sizes (KiB, MiB) rather than numbers.
	Bytes bool
	// After keeps the bar hidden until this much is done: a transfer of
	// unknown size gets a bar only once it proves large.
	After int64
}

// Bar is a progress bar counting up to a total (or an open-ended counter
// when the total is 0).
type Bar struct {
	w        io.Writer
	label    string
	total    int64
	interval time.Duration
	now      func() time.Time
	bytes    bool
	after    int64

	mu     sync.Mutex
	done   int64
	last   time.Time
	drawn  bool
	closed bool
}

// IsTerminal reports whether w is a terminal: an *os.File that is a
// character device, or a writer that says so with an IsTerminal method (a
// test's stand-in, a wrapped terminal). Pipes, regular files and buffers
// are not.
func IsTerminal(w io.Writer) bool {
	if t, ok := w.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal()
	}
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// New returns a bar labelled label counting to total on w. When w is not a
// terminal (and o.Force is off) the bar counts but never writes.
func New(w io.Writer, label string, total int64, o Options) *Bar {
	if !o.Force && !IsTerminal(w) {
		w = nil
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return &Bar{w: w, label: label, total: total, interval: o.Interval, now: o.Clock, bytes: o.Bytes, after: o.After}
}

// Add counts n more units done and redraws if the interval has passed since
// the last redraw.
func (b *Bar) Add(n int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	if b.w == nil || b.closed || b.done < b.after {
		return
	}
	if t := b.now(); !b.drawn || t.Sub(b.last) >= b.interval {
		b.last = t
		b.draw()
	}
}

// Done draws the final state and ends the line. Later calls do nothing.
func (b *Bar) Done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.w == nil || b.closed || !b.drawn && b.done < b.after {
		b.closed = true
		return
	}
	b.closed = true
	b.draw()
	fmt.Fprint(b.w, "\n")
}

// draw rewrites the current line (carriage return, no newline). Write
// errors are ignored: progress is a courtesy, never a reason to fail.
func (b *Bar) draw() {
	b.drawn = true
	if b.total <= 0 {
		fmt.Fprintf(b.w, "\r%s %s", b.label, b.count(b.done))
		return
	}
	d := min(max(b.done, 0), b.total)
	fill := int(d * width / b.total)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	fmt.Fprintf(b.w, "\r%s [%s] %s/%s %3d%%", b.label, bar, b.count(b.done), b.count(b.total), d*100/b.total)
}

func (b *Bar) count(n int64) string {
	if !b.bytes {
		return fmt.Sprint(n)
	}
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// Reader counts what is read through r on b and draws b's final state at
// the end of the stream (io.EOF), so a transfer's bar needs no other call.
func Reader(r io.Reader, b *Bar) io.Reader { return &reader{r: r, b: b} }

type reader struct {
	r io.Reader
	b *Bar
}

func (r *reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.b.Add(int64(n))
	if err == io.EOF {
		r.b.Done()
	}
	return n, err
}

// Transfer wraps the body of a transfer of size bytes (negative: unknown)
// with a byte bar on w. A transfer announced smaller than minBytes gets no
// bar; one of unknown size gets an open-ended counter once minBytes have
// arrived.
func Transfer(r io.Reader, w io.Writer, label string, size, minBytes int64) io.Reader {
	switch {
	case size >= minBytes:
		return Reader(r, New(w, label, size, Options{Bytes: true}))
	case size < 0:
		return Reader(r, New(w, label, 0, Options{Bytes: true, After: minBytes}))
	}
	return r
}
