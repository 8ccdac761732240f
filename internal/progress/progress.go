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
}

// Bar is a progress bar counting up to a total (or an open-ended counter
// when the total is 0).
type Bar struct {
	w        io.Writer
	label    string
	total    int64
	interval time.Duration
	now      func() time.Time

	mu     sync.Mutex
	done   int64
	last   time.Time
	drawn  bool
	closed bool
}

// IsTerminal reports whether w is a terminal: an *os.File that is a
// character device. Pipes, regular files and buffers are not.
func IsTerminal(w io.Writer) bool {
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
	return &Bar{w: w, label: label, total: total, interval: o.Interval, now: o.Clock}
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
	if b.w == nil || b.closed {
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
	if b.w == nil || b.closed {
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
		fmt.Fprintf(b.w, "\r%s %d", b.label, b.done)
		return
	}
	d := min(max(b.done, 0), b.total)
	fill := int(d * width / b.total)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	fmt.Fprintf(b.w, "\r%s [%s] %d/%d %3d%%", b.label, bar, b.done, b.total, d*100/b.total)
}
